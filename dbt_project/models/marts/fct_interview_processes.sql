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
        updated_at,
        is_in_flight,
        is_offer_declined,
        completed_stages_count,
        cleared_interviewing,
        phone_screen_entered,
        phone_screen_passed,
        phone_screen_failed,
        technical_entered,
        technical_passed,
        technical_failed,
        onsite_entered,
        onsite_passed,
        onsite_failed,
    from processes
)

select * from final
