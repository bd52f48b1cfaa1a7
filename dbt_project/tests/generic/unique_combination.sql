{# The columns together identify a row: no combination appears twice. #}
{% test unique_combination(model, columns) %}
select {{ columns | join(', ') }}, count(*) as copies
from {{ model }}
group by all
having count(*) > 1
{% endtest %}
