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
        row_number() over (
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
        ) as status_sequence,
        statuses.is_terminal,
        statuses.is_offer
    from history
    left join statuses on history.to_status = statuses.status
),

final as (
    select
        {{ surrogate_key(['interview_process_id', 'status_sequence']) }} as status_change_id,
        sequenced.*
    from sequenced
)

select * from final
