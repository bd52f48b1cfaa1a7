-- One row per process: feeder resolved, stage reach and status dates joined, flags derived.
with

processes as (
    select * from {{ ref('stg_itrack__interview_processes') }}
),

candidates as (
    select * from {{ ref('stg_itrack__candidates') }}
),

reach as (
    select * from {{ ref('int_processes_stage_reach') }}
),

status_dates as (
    select * from {{ ref('int_processes_status_dates') }}
),

enriched as (
    select
        processes.interview_process_id,
        processes.candidate_id,
        processes.company_name,
        processes.role_title,
        coalesce(processes.feeder_source, candidates.feeder_source, 'unattributed')
            as feeder_source,
        processes.recruiter_name,
        processes.status,
        processes.final_outcome,
        processes.offer_details,
        processes.created_at as started_at,
        processes.updated_at,
        processes.status in
            ('offer_accepted', 'offer_declined', 'rejected_by_company', 'candidate_withdrew')
            as is_terminal,
        processes.status in ('in_progress', 'on_hold') as is_in_flight,
        processes.status = 'offer_accepted' as is_placement,
        processes.status = 'offer_declined' as is_offer_declined,
        processes.status in ('offer_extended', 'offer_accepted', 'offer_declined')
            or processes.has_offer_details
            or coalesce(status_dates.ever_offered, false) as reached_offer,
        coalesce(reach.stages_count, 0) as stages_count,
        coalesce(reach.completed_stages_count, 0) as completed_stages_count,
        coalesce(reach.stages_count, 0) > 0
            and reach.decided_stages_count = reach.stages_count
            and reach.failed_stages_count = 0 as cleared_interviewing,
        {% for t in ['phone_screen', 'technical', 'onsite'] %}
        coalesce(reach.{{ t }}_entered, false) as {{ t }}_entered,
        coalesce(reach.{{ t }}_passed, false) as {{ t }}_passed,
        coalesce(reach.{{ t }}_failed, false) as {{ t }}_failed,
        {% endfor %}
        case
            when reach.onsite_entered then 'onsite'
            when reach.technical_entered then 'technical'
            when reach.phone_screen_entered then 'phone_screen'
            when reach.other_entered then 'other'
            else 'none'
        end as furthest_stage_reached,
        case when processes.status in
                ('offer_accepted', 'offer_declined', 'rejected_by_company', 'candidate_withdrew')
            then coalesce(status_dates.decided_at, processes.updated_at)
        end as decided_at,
        case when processes.status = 'offer_accepted'
            then coalesce(status_dates.placed_at, processes.updated_at)
        end as placed_at,
        {{ dbt.date_trunc('month', 'processes.created_at') }}::date as cohort_month
    from processes
    left join candidates on processes.candidate_id = candidates.candidate_id
    left join reach on processes.interview_process_id = reach.interview_process_id
    left join status_dates
        on processes.interview_process_id = status_dates.interview_process_id
)

select * from enriched
