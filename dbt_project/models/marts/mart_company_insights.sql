-- Per company: how candidates fare there, which feeders work for it, why people are rejected.
{% set min_n = var('preferred_feeder_min_processes') %}
with

processes as (
    select * from {{ ref('fct_interview_processes') }}
),

stages as (
    select * from {{ ref('fct_interview_stages') }}
),

feeder_rates as (
    select
        company_name,
        feeder_source,
        count(*) as processes,
        {{ safe_divide('count(*) filter (where reached_offer)', 'count(*)') }} as offer_rate
    from processes
    group by all
    having count(*) >= {{ min_n }}
),

preferred as (
    select
        company_name,
        to_json(list(struct_pack(feeder_source := feeder_source, processes := processes,
                                 offer_rate := round(offer_rate, 4))
                     order by offer_rate desc, processes desc, feeder_source))
            as preferred_feeders
    from feeder_rates
    group by all
),

reasons as (
    select company_name, coalesce({{ normalize_text('final_outcome') }}, 'unspecified') as reason,
           'final_outcome' as source, 1 as copies
    from processes where status = 'rejected_by_company'
    union all
    -- failed-stage notes: each sentence or ';'-separated phrase is a reason (each distinct
    -- note split once, weighted by its copies)
    select company_name, {{ normalize_text('phrase') }}, 'failed_stage_notes', copies
    from (
        select company_name, feedback_notes, count(*) as copies
        from stages
        where outcome = 'failed' and feedback_notes is not null
        group by all
    ) as failed_notes
    cross join unnest(regexp_split_to_array(feedback_notes, '[;.]')) as t(phrase)
    where trim(phrase) <> ''
),

reason_counts as (
    select company_name,
        to_json(list(struct_pack(reason := reason, source := source, count := n)
                     order by n desc, reason)) as rejection_reasons
    from (select company_name, reason, source, sum(copies)::bigint as n from reasons group by all)
    group by all
),

per_company as (
    select
        company_name,
        count(distinct candidate_id) as total_candidates_sent,
        count(*) as processes,
        {{ safe_divide('count(*) filter (where completed_stages_count > 0)', 'count(*)') }}
            as interview_rate,
        {{ safe_divide('count(*) filter (where reached_offer)', 'count(*)') }} as offer_rate,
        {{ safe_divide('count(*) filter (where is_placement)',
                       'count(*) filter (where is_placement or is_offer_declined)') }}
            as acceptance_rate,
        avg({{ dbt.datediff('started_at', 'decided_at', 'day') }}) as avg_days_to_decision,
        median({{ dbt.datediff('started_at', 'decided_at', 'day') }}) as median_days_to_decision
    from processes
    group by all
),

final as (
    select
        per_company.*,
        coalesce(preferred.preferred_feeders, '[]')::json as preferred_feeders,
        coalesce(reason_counts.rejection_reasons, '[]')::json as rejection_reasons
    from per_company
    left join preferred using (company_name)
    left join reason_counts using (company_name)
)

select * from final
