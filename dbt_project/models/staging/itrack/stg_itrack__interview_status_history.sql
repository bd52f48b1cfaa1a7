with

source as (
    select * from {{ source('itrack', 'interview_status_history') }}
),

renamed as (
    select
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
