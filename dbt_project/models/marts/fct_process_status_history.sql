-- One row per status a process was in, as a dated interval, in the explicit sequence of
-- int_status_changes_sequenced.
with

history as (
    select * from {{ ref('int_status_changes_sequenced') }}
),

processes as (
    select interview_process_id from {{ ref('fct_interview_processes') }}
),

intervals as (
    select
        history.status_change_id,
        history.interview_process_id,
        history.status_sequence,
        history.to_status as status,
        history.from_status as previous_status,
        history.changed_at as valid_from,
        history.next_changed_at as valid_until,
        history.is_terminal as is_terminal_status,
        history.recorded_by,
        history.run_id
    from history
    inner join processes on history.interview_process_id = processes.interview_process_id
),

measured as (
    select
        intervals.*,
        valid_until is null as is_current,
        -- a current terminal status has no end: no days are counted "in" it
        case
            when valid_until is not null then valid_until
            when not is_terminal_status then {{ as_of() }}
        end as measured_until
    from intervals
),

final as (
    select
        status_change_id,
        interview_process_id,
        status,
        previous_status,
        valid_from,
        valid_until,
        is_current,
        case when measured_until >= valid_from
            then {{ whole_days('valid_from', 'measured_until') }} end as days_in_status,
        is_terminal_status,
        recorded_by,
        run_id,
        status_sequence,
        case when measured_until >= valid_from
            then {{ elapsed_days('valid_from', 'measured_until') }} end as elapsed_days_in_status,
        coalesce(measured_until < valid_from, false) as is_out_of_order
    from measured
)

select * from final
