{#
  Copy the raw tables from the raw store (read-only attach) into schema `raw` of the target.
  Raw store path: $ITRACK_RAW_DB, else the target path with `.duckdb` -> `.raw.duckdb`
  (the same rule as ingest/store.py raw_store_path).
#}
{% macro raw_store_path() %}
  {%- set default = env_var('ITRACK_DB', 'data/warehouse.duckdb') | replace('.duckdb', '.raw.duckdb') -%}
  {{- return(env_var('ITRACK_RAW_DB', default)) -}}
{% endmacro %}

{% macro refresh_raw_schema() %}
  {% if execute %}
    {% set tables = ['candidates', 'interview_processes', 'interview_stages',
                     'interview_status_history', 'feedback_runs'] %}
    {% set path = raw_store_path() | replace("'", "''") %}
    {% do run_query("attach if not exists '" ~ path ~ "' as itrack_raw_store (read_only)") %}
    {% do run_query("create schema if not exists raw") %}
    {% for t in tables %}
      {% do run_query("create or replace table raw." ~ t ~ " as select * from itrack_raw_store.main." ~ t) %}
    {% endfor %}
    {% do run_query("detach itrack_raw_store") %}
  {% endif %}
  select 1
{% endmacro %}
