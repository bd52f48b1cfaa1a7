{#
  A hash of a whole row (every column of the relation alias given): any change to a raw row,
  however it was made, gives it a new hash. The incremental staging models copy only the raw
  rows whose (key, hash) they do not hold yet.
#}
{% macro row_hash(alias) -%}
  {{ return(adapter.dispatch('row_hash', 'interview_tracking')(alias)) }}
{%- endmacro %}

{% macro default__row_hash(alias) -%}
  hash({{ alias }})
{%- endmacro %}

{% macro postgres__row_hash(alias) -%}
  md5(cast({{ alias }} as text))
{%- endmacro %}

{#
  Post-hook of an incremental staging model: delete the rows whose raw row is gone (a
  restored backup). By key (`key` in this model, `raw_key` in raw table `table`), or without
  a key by the row hash.
#}
{% macro delete_rows_gone_from_source(table, key=none, raw_key=none) -%}
  delete from {{ this }}
  {%- if key %}
  where not exists (
      select 1 from {{ source('itrack', table) }} as raw where raw.{{ raw_key }} = {{ this }}.{{ key }})
  {%- else %}
  where source_row_hash not in (select {{ row_hash('raw') }} from {{ source('itrack', table) }} as raw)
  {%- endif %}
{%- endmacro %}

{# The incremental filter: raw rows (alias `raw`) whose key and hash this model does not hold. #}
{% macro new_raw_rows(key=none, raw_key=none) -%}
  {%- if is_incremental() %}
  where not exists (
      select 1 from {{ this }} as built
      where {% if key %}built.{{ key }} = raw.{{ raw_key }} and {% endif -%}
          built.source_row_hash = {{ row_hash('raw') }}
  )
  {%- endif %}
{%- endmacro %}
