{#
  Per `key` (company_key, feeder_key) of `from_relation` (int_processes_rejection_reasons): the
  JSON array of {reason, count}, one per reason key (shown by its display spelling), most
  frequent first, ties by reason; only the first `top` when given. One definition of the reason
  lists of the company and feeder marts.
#}
{% macro rejection_reason_lists(from_relation, key, column, top=none) %}
    select
        {{ key }},
        {{ json_objects_agg([('reason', 'reason'), ('count', 'n')], 'n desc, reason') }}
            as {{ column }}
    from (
        select
            {{ key }},
            reason_key,
            reason,
            count(*) as n,
            row_number() over (partition by {{ key }} order by count(*) desc, reason) as reason_rank
        from {{ from_relation }}
        group by {{ key }}, reason_key, reason
    ) as counted
    {% if top is not none -%} where reason_rank <= {{ top }} {%- endif %}
    group by {{ key }}
{% endmacro %}
