-- One row per process: names keyed and displayed, feeder resolved, stage reach and status
-- dates joined, every process-level definition of the marts derived (see the model docs).
with

processes as (
    select * from {{ ref('stg_itrack__interview_processes') }}
),

candidates as (
    select * from {{ ref('stg_itrack__candidates') }}
),

statuses as (
    select * from {{ ref('interview_statuses') }}
),

reach as (
    select * from {{ ref('int_processes_stage_reach') }}
),

status_dates as (
    select * from {{ ref('int_processes_status_dates') }}
),

-- the feeder of a process: its own, else its candidate's, else `unattributed`
resolved as (
    select
        processes.*,
        coalesce(processes.feeder_source, candidates.feeder_source, 'unattributed')
            as feeder_spelling,
        coalesce(processes.feeder_key, candidates.feeder_key, 'unattributed') as resolved_feeder_key
    from processes
    left join candidates on processes.candidate_id = candidates.candidate_id
),

-- one display name per key: the most frequent spelling, ties to the smallest
company_names as (
    {{ most_frequent_spelling('resolved', 'company_key', 'company_name', 'company_display') }}
),

feeder_names as (
    {{ most_frequent_spelling('resolved', 'resolved_feeder_key', 'feeder_spelling', 'feeder_display') }}
),

enriched as (
    select
        resolved.interview_process_id,
        resolved.candidate_id,
        company_names.company_display as company_name,
        resolved.company_key,
        resolved.role_title,
        feeder_names.feeder_display as feeder_source,
        resolved.resolved_feeder_key as feeder_key,
        resolved.recruiter_name,
        resolved.status,
        resolved.final_outcome,
        resolved.offer_details,
        resolved.created_at as started_at,
        resolved.updated_at,
        statuses.is_terminal,
        not statuses.is_terminal and not statuses.is_offer as is_in_flight,
        resolved.status = 'offer_accepted' as is_placement,
        resolved.status = 'offer_declined' as is_offer_declined,
        resolved.status = 'offer_extended' as is_offer_pending,
        statuses.is_offer
            or resolved.has_offer_details
            or coalesce(status_dates.ever_offered, false) as reached_offer,
        coalesce(reach.stages_count, 0) as stages_count,
        coalesce(reach.completed_stages_count, 0) as completed_stages_count,
        coalesce(reach.passed_stages_count, 0) as passed_stages_count,
        coalesce(reach.pending_stages_count, 0) as pending_stages_count,
        coalesce(reach.has_unpassed_failure, false) as has_unpassed_failure,
        {% for t in var('stage_types') %}
        coalesce(reach.{{ t }}_entered, false) as {{ t }}_entered,
        coalesce(reach.{{ t }}_passed, false) as {{ t }}_passed,
        coalesce(reach.{{ t }}_failed, false) as {{ t }}_failed,
        {% endfor %}
        coalesce(reach.furthest_stage_reached, 'none') as furthest_stage_reached,
        case when statuses.is_terminal
            then coalesce(status_dates.decided_at, resolved.updated_at)
        end as decided_at,
        case when resolved.status = 'offer_accepted'
            then coalesce(status_dates.placed_at, resolved.updated_at)
        end as placed_at,
        cast({{ dbt.date_trunc('month', 'resolved.created_at') }} as date) as cohort_month
    from resolved
    inner join statuses on resolved.status = statuses.status
    inner join company_names on resolved.company_key = company_names.company_key
    inner join feeder_names on resolved.resolved_feeder_key = feeder_names.resolved_feeder_key
    left join reach on resolved.interview_process_id = reach.interview_process_id
    left join status_dates on resolved.interview_process_id = status_dates.interview_process_id
),

-- cleared interviewing: an offer was made (with or without stages), or at least one stage
-- passed, none is pending and no stage type ended failed (a passed retake clears the failure;
-- cancelled and no-show stages neither clear nor block)
defined as (
    select
        enriched.*,
        reached_offer
            or (passed_stages_count > 0
                and pending_stages_count = 0
                and not has_unpassed_failure) as cleared_interviewing,
        reached_offer and status = 'candidate_withdrew' as is_offer_withdrawn,
        reached_offer and status = 'rejected_by_company' as is_offer_rescinded,
        -- elapsed days, null when the dates contradict each other (flagged in data quality)
        case when decided_at >= started_at
            then {{ elapsed_days('started_at', 'decided_at') }} end as elapsed_days_to_decision,
        case when decided_at >= started_at
            then {{ whole_days('started_at', 'decided_at') }} end as days_to_decision,
        case when placed_at >= started_at
            then {{ elapsed_days('started_at', 'placed_at') }} end as elapsed_days_to_hire,
        coalesce(decided_at < started_at, false) as is_decided_before_start
    from enriched
)

select * from defined
