-- Per company (normalised key, display name): how candidates fare there, which feeders work
-- for it, why people are rejected (int_processes_rejection_reasons: the same definition as the
-- feeder mart's top_rejection_reasons).
{% set min_n = var('preferred_feeder_min_processes') %}
{% set decision_us = "case when elapsed_days_to_decision is not null then "
                     ~ elapsed_microseconds('started_at', 'decided_at') ~ " end" %}
with

processes as (
    select * from {{ ref('fct_interview_processes') }}
),

reasons as (
    select * from {{ ref('int_processes_rejection_reasons') }}
),

feeder_rates as (
    select
        company_key,
        feeder_key,
        min(feeder_source) as feeder_source,
        count(*) as processes,
        {{ safe_divide('count(*) filter (where reached_offer)', 'count(*)') }} as offer_rate
    from processes
    {{ group_by(2) }}
    having count(*) >= {{ min_n }}
),

preferred as (
    select
        company_key,
        {{ json_objects_agg([('feeder_source', 'feeder_source'), ('processes', 'processes'),
                             ('offer_rate', 'round(offer_rate, 4)')],
                            'offer_rate desc, processes desc, feeder_source') }}
            as preferred_feeders
    from feeder_rates
    {{ group_by(1) }}
),

company_reasons as (
    {{ rejection_reason_lists('reasons', 'company_key', 'rejection_reasons') }}
),

per_company as (
    select
        company_key,
        min(company_name) as company_name,
        count(distinct candidate_id) as total_candidates_sent,
        count(*) as processes,
        {{ safe_divide('count(*) filter (where completed_stages_count > 0)', 'count(*)') }}
            as interview_rate,
        {{ safe_divide('count(*) filter (where reached_offer)', 'count(*)') }} as offer_rate,
        {{ safe_divide('count(*) filter (where is_placement)',
                       'count(*) filter (where is_placement or is_offer_declined
                                              or is_offer_withdrawn)') }}
            as acceptance_rate,
        {{ mean_elapsed_days(decision_us) }} as avg_days_to_decision,
        {{ median_elapsed_days(decision_us) }} as median_days_to_decision
    from processes
    {{ group_by(1) }}
),

final as (
    select
        per_company.company_name,
        per_company.total_candidates_sent,
        per_company.processes,
        per_company.processes as processes_started,
        per_company.interview_rate,
        per_company.offer_rate,
        per_company.acceptance_rate,
        per_company.acceptance_rate as offer_accepted_rate,
        per_company.avg_days_to_decision,
        per_company.median_days_to_decision,
        coalesce(preferred.preferred_feeders, {{ empty_json_array() }}) as preferred_feeders,
        coalesce(company_reasons.rejection_reasons, {{ empty_json_array() }})
            as rejection_reasons,
        per_company.company_key
    from per_company
    left join preferred on per_company.company_key = preferred.company_key
    left join company_reasons on per_company.company_key = company_reasons.company_key
)

select * from final
