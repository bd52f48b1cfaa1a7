{# lower-case, trimmed, inner whitespace collapsed: "Technical  Interview " -> "technical interview" #}
{% macro normalize_stage_name(column) -%}
  regexp_replace(lower(trim({{ column }})), '\s+', ' ', 'g')
{%- endmacro %}
