-- One row per process that has status history: when it was decided, placed, offered.
with

history as (
    select * from {{ ref('stg_itrack__interview_status_history') }}
),

dates as (
    select
        interview_process_id,
        min(changed_at) filter (where to_status in
            ('offer_accepted', 'offer_declined', 'rejected_by_company', 'candidate_withdrew'))
            as decided_at,
        min(changed_at) filter (where to_status = 'offer_accepted') as placed_at,
        min(changed_at) filter (where to_status = 'offer_extended') as offer_extended_at,
        bool_or(to_status in ('offer_extended', 'offer_accepted', 'offer_declined'))
            as ever_offered,
        count(*) as status_changes
    from history
    group by all
)

select * from dates
