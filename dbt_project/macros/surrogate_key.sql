{# md5 of the columns joined with "|", nulls as empty text (dbt packages are out of reach offline) #}
{% macro surrogate_key(columns) -%}
  md5(concat_ws('|', {% for c in columns %}coalesce(cast({{ c }} as varchar), ''){% if not loop.last %}, {% endif %}{% endfor %}))
{%- endmacro %}
