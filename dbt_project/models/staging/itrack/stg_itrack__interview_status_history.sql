with

source as (
    select * from {{ source('itrack', 'interview_status_history') }}
),

renamed as (
    select
        {{ surrogate_key(['interview_process_id', 'changed_at', 'to_status', 'run_id']) }}
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
