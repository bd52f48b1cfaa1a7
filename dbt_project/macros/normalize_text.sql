{# lower-case, trimmed, inner whitespace collapsed: "Technical  Interview " -> "technical interview".
   The key for stage names (seed `stage_types`) and for grouping free-text reasons. #}
{% macro normalize_text(column) -%}
  regexp_replace(lower(trim({{ column }})), '\s+', ' ', 'g')
{%- endmacro %}
