-- One row per process that has status history: when it was decided, placed, offered.
-- decided_at / placed_at are the change into the terminal status / offer_accepted, the last one
-- in sequence if the history holds several (a reopened process); offer_extended_at the first.
with

history as (
    select * from {{ ref('int_status_changes_sequenced') }}
),

last_changes as (
    select
        interview_process_id,
        max(status_sequence) filter (where is_terminal) as decided_sequence,
        max(status_sequence) filter (where to_status = 'offer_accepted') as placed_sequence,
        min(status_sequence) filter (where to_status = 'offer_extended')
            as offer_extended_sequence,
        bool_or(is_offer) as ever_offered,
        count(*) as status_changes
    from history
    {{ group_by(1) }}
),

dates as (
    select
        last_changes.interview_process_id,
        decided.changed_at as decided_at,
        placed.changed_at as placed_at,
        offered.changed_at as offer_extended_at,
        last_changes.ever_offered,
        last_changes.status_changes
    from last_changes
    left join history as decided
        on last_changes.interview_process_id = decided.interview_process_id
        and last_changes.decided_sequence = decided.status_sequence
    left join history as placed
        on last_changes.interview_process_id = placed.interview_process_id
        and last_changes.placed_sequence = placed.status_sequence
    left join history as offered
        on last_changes.interview_process_id = offered.interview_process_id
        and last_changes.offer_extended_sequence = offered.status_sequence
)

select * from dates
