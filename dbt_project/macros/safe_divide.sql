{# numerator / denominator as a double, null when the denominator is 0 or null #}
{% macro safe_divide(numerator, denominator) -%}
  ({{ numerator }})::double / nullif({{ denominator }}, 0)
{%- endmacro %}
