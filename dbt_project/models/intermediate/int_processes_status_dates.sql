-- One row per process that has status history: when it was decided, placed, offered.
-- decided_at / placed_at are the change into the terminal status / offer_accepted, the last one
-- in sequence if the history holds several (a reopened process); offer_extended_at the first.
-- The sequence orders by change time first, so the last (first) such change in sequence is
-- the one with the latest (earliest) change time: one aggregate, no join back to the changes.
with

history as (
    select * from {{ ref('int_status_changes_sequenced') }}
),

dates as (
    select
        interview_process_id,
        max(changed_at) filter (where is_terminal) as decided_at,
        max(changed_at) filter (where to_status = 'offer_accepted') as placed_at,
        min(changed_at) filter (where to_status = 'offer_extended') as offer_extended_at,
        bool_or(is_offer) as ever_offered,
        count(*) as status_changes
    from history
    {{ group_by(1) }}
)

select * from dates
