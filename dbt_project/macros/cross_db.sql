{#
  Engine-specific SQL lives behind these dispatched macros (`adapter.dispatch`), so the same
  models can run on dbt-postgres: DuckDB gets `default__`, PostgreSQL `postgres__`.
#}

{# group by every non-aggregated column: DuckDB's `group by all`, else positions 1..n #}
{% macro group_by(n) -%}
  {{ return(adapter.dispatch('group_by', 'interview_tracking')(n)) }}
{%- endmacro %}

{% macro default__group_by(n) -%}
  group by all
{%- endmacro %}

{% macro postgres__group_by(n) -%}
  group by {% for i in range(1, n + 1) %}{{ i }}{% if not loop.last %}, {% endif %}{% endfor %}
{%- endmacro %}

{# cast to a 64-bit float #}
{% macro as_double(expression) -%}
  {{ return(adapter.dispatch('as_double', 'interview_tracking')(expression)) }}
{%- endmacro %}

{% macro default__as_double(expression) -%}
  cast({{ expression }} as double)
{%- endmacro %}

{% macro postgres__as_double(expression) -%}
  cast({{ expression }} as double precision)
{%- endmacro %}

{# cast text to JSON #}
{% macro as_json(expression) -%}
  {{ return(adapter.dispatch('as_json', 'interview_tracking')(expression)) }}
{%- endmacro %}

{% macro default__as_json(expression) -%}
  cast({{ expression }} as json)
{%- endmacro %}

{# numerator / denominator as a double, null when the denominator is 0 or null #}
{% macro safe_divide(numerator, denominator) -%}
  {{ as_double(numerator) }} / nullif({{ denominator }}, 0)
{%- endmacro %}

{# the median of an expression (an aggregate) #}
{% macro median(expression) -%}
  {{ return(adapter.dispatch('median', 'interview_tracking')(expression)) }}
{%- endmacro %}

{% macro default__median(expression) -%}
  median({{ expression }})
{%- endmacro %}

{% macro postgres__median(expression) -%}
  percentile_cont(0.5) within group (order by {{ expression }})
{%- endmacro %}

{# 'YYYY-MM' of a date or timestamp #}
{% macro format_month(expression) -%}
  {{ return(adapter.dispatch('format_month', 'interview_tracking')(expression)) }}
{%- endmacro %}

{% macro default__format_month(expression) -%}
  strftime({{ expression }}, '%Y-%m')
{%- endmacro %}

{% macro postgres__format_month(expression) -%}
  to_char({{ expression }}, 'YYYY-MM')
{%- endmacro %}

{#
  Elapsed time in days between two timestamps, as a fraction (36 hours = 1.5): what every
  "days" column of the marts is built on. `whole_days` is its floor (47.5 hours = 1 day,
  23:00 -> 01:00 the next day = 0 days), never the count of calendar-date boundaries.
#}
{% macro elapsed_days(start, finish) -%}
  {{ return(adapter.dispatch('elapsed_days', 'interview_tracking')(start, finish)) }}
{%- endmacro %}

{% macro default__elapsed_days(start, finish) -%}
  ((epoch_us({{ finish }}) - epoch_us({{ start }})) / 86400000000.0)
{%- endmacro %}

{% macro postgres__elapsed_days(start, finish) -%}
  (extract(epoch from ({{ finish }} - {{ start }}))::double precision / 86400.0)
{%- endmacro %}

{# Elapsed time in whole microseconds (exact): the integer the day means and medians use #}
{% macro elapsed_microseconds(start, finish) -%}
  {{ return(adapter.dispatch('elapsed_microseconds', 'interview_tracking')(start, finish)) }}
{%- endmacro %}

{% macro default__elapsed_microseconds(start, finish) -%}
  (epoch_us({{ finish }}) - epoch_us({{ start }}))
{%- endmacro %}

{% macro postgres__elapsed_microseconds(start, finish) -%}
  cast(round(extract(epoch from ({{ finish }} - {{ start }})) * 1000000) as bigint)
{%- endmacro %}

{#
  The mean and the median of elapsed days (aggregates) over the rows where `microseconds`
  (an elapsed_microseconds expression, null to leave a row out) is not null. Computed on the
  exact microseconds and divided once, so each is the exact mean or median (the median of an
  even count: the mean of the two middle values) rounded once to a double, whatever order the
  engine adds in: the same value on every run, equal to the plain-Python reference's
  (tests/reference_model.py) while the group's total stays under 2^53 µs (285 years).
#}
{% macro mean_elapsed_days(microseconds) -%}
  {{ as_double('sum(' ~ microseconds ~ ')') }} / (nullif(count({{ microseconds }}), 0) * 86400000000)
{%- endmacro %}

{% macro median_elapsed_days(microseconds) -%}
  {{ as_double(median(microseconds)) }} / 86400000000
{%- endmacro %}

{#
  The sample standard deviation of an integer expression (an aggregate), from exact integer
  sums: the square root of the exact sample variance rounded once to a double; null below two
  values.
#}
{% macro stddev_of_integers(expression) -%}
  sqrt({{ as_double('count(' ~ expression ~ ') * sum(' ~ expression ~ ' * ' ~ expression ~ ')'
                    ~ ' - sum(' ~ expression ~ ') * sum(' ~ expression ~ ')') }}
       / nullif(count({{ expression }}) * (count({{ expression }}) - 1), 0))
{%- endmacro %}

{% macro whole_days(start, finish) -%}
  cast(floor({{ elapsed_days(start, finish) }}) as bigint)
{%- endmacro %}

{#
  A JSON array of objects, one per row of the group, in order: `fields` is a list of
  (key, expression) pairs, `order_by` an order-by list. (Cut to the top N before aggregating.)
#}
{% macro json_objects_agg(fields, order_by) -%}
  {{ return(adapter.dispatch('json_objects_agg', 'interview_tracking')(fields, order_by)) }}
{%- endmacro %}

{% macro default__json_objects_agg(fields, order_by) -%}
  to_json(list(struct_pack(
      {%- for key, expression in fields %}{{ key }} := {{ expression }}{% if not loop.last %}, {% endif %}{% endfor -%}
  ) order by {{ order_by }}))
{%- endmacro %}

{% macro postgres__json_objects_agg(fields, order_by) -%}
  json_agg(json_build_object(
      {%- for key, expression in fields %}'{{ key }}', {{ expression }}{% if not loop.last %}, {% endif %}{% endfor -%}
  ) order by {{ order_by }})
{%- endmacro %}

{# an empty JSON array #}
{% macro empty_json_array() -%}
  {{ as_json("'[]'") }}
{%- endmacro %}

{#
  A key from structured values: md5 of each value's length and text (null as `~`), so no two
  different tuples share the encoding ("a @ b" x "c" never meets "a" x "b @ c").
#}
{% macro surrogate_key(columns) -%}
  md5(
    {%- for c in columns %}
    coalesce(cast(length(cast({{ c }} as varchar)) as varchar) || ':' || cast({{ c }} as varchar), '~')
    {%- if not loop.last %} || '|' ||{% endif %}
    {%- endfor %}
  )
{%- endmacro %}

{# The build time as a naive-UTC timestamp literal: var `as_of` when given, else the run's start.
   The run's start carries a marker: a replay of the compiled build (itrack/dbt_plan.py) puts
   its own start in its place. Microseconds kept: cut to the second, a status change or a
   process recorded earlier in the build's first second looked later than the build. #}
{% macro as_of() -%}
  {%- if var('as_of', none) -%}
  cast('{{ var('as_of') }}' as timestamp)
  {%- else -%}
  cast('{{ run_started_at.strftime('%Y-%m-%d %H:%M:%S.%f') }}' as timestamp) /* itrack:run_started_at */
  {%- endif -%}
{%- endmacro %}
