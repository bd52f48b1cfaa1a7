with

source as (
    select * from {{ source('itrack', 'interview_status_history') }}
),

renamed as (
    select
        -- every part is not null in the raw schema, so no null handling (half the cost of
        -- surrogate_key() on a million rows)
        md5(concat_ws('|', interview_process_id, changed_at, to_status, run_id))
            as status_change_id,
        interview_process_id,
        from_status,
        to_status,
        changed_at,
        run_id,
        source as recorded_by,
        recorded_at
    from source
)

select * from renamed
