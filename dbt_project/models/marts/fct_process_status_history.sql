-- One row per status a process was in, as a dated interval.
with

history as (
    select * from {{ ref('stg_itrack__interview_status_history') }}
),

processes as (
    select interview_process_id from {{ ref('fct_interview_processes') }}
),

intervals as (
    select
        history.status_change_id,
        history.interview_process_id,
        history.to_status as status,
        history.from_status as previous_status,
        history.changed_at as valid_from,
        lead(history.changed_at) over (
            partition by history.interview_process_id
            order by history.changed_at, history.recorded_at
        ) as valid_until,
        history.recorded_by,
        history.run_id
    from history
    inner join processes using (interview_process_id)
),

final as (
    select
        status_change_id,
        interview_process_id,
        status,
        previous_status,
        valid_from,
        valid_until,
        valid_until is null as is_current,
        {{ dbt.datediff('valid_from',
                        "coalesce(valid_until, '" ~ run_started_at.strftime('%Y-%m-%d %H:%M:%S') ~ "'::timestamp)",
                        'day') }} as days_in_status,
        status in ('offer_accepted', 'offer_declined', 'rejected_by_company', 'candidate_withdrew')
            as is_terminal_status,
        recorded_by,
        run_id,
    from intervals
)

select * from final
