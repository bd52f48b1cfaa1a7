with

processes as (
    select * from {{ ref('int_processes_enriched') }}
),

final as (
    select
        interview_process_id,
        candidate_id,
        company_name,
        role_title,
        feeder_source,
        recruiter_name,
        status,
        final_outcome,
        offer_details,
        stages_count,
        furthest_stage_reached,
        reached_offer,
        started_at,
        decided_at,
        {{ dbt.datediff('started_at', 'decided_at', 'day') }} as days_to_decision,
        is_terminal,
        is_placement,
        placed_at,
        cohort_month,
    from processes
)

select * from final
