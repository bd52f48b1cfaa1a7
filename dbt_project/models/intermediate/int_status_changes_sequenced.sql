-- One row per recorded status change, numbered 1, 2, ... per process in an explicit, total
-- order: change time, then record time, then the creation row (from_status null) first, then
-- non-terminal before terminal and non-offer before offer statuses (a process that arrives
-- already decided gets `null -> in_progress` and `in_progress -> X` at the same instant),
-- then the status names and run id. Ties are impossible, so "the current status" is stable.
with

history as (
    select * from {{ ref('stg_itrack__interview_status_history') }}
),

statuses as (
    select * from {{ ref('interview_statuses') }}
),

sequenced as (
    select
        history.*,
        row_number() over in_sequence as status_sequence,
        statuses.is_terminal,
        statuses.is_offer,
        -- the next change's time, from the same sort as the numbering (fct_process_status_history
        -- numbered, then sorted again by the number for this: 0.5 CPU seconds at 1M records);
        -- any order of fully tied rows gives the same times, as their changed_at are equal
        lead(history.changed_at) over in_sequence as next_changed_at
    from history
    left join statuses on history.to_status = statuses.status
    window in_sequence as (
        partition by history.interview_process_id
        order by
            history.changed_at,
            history.recorded_at,
            history.from_status is not null,
            statuses.is_terminal,
            statuses.is_offer,
            history.to_status,
            history.from_status,
            history.run_id
    )
),

final as (
    select
        {{ surrogate_key(['interview_process_id', 'status_sequence']) }} as status_change_id,
        sequenced.*
    from sequenced
)

select * from final
