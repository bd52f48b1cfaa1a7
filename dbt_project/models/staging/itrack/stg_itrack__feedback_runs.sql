with

source as (
    select * from {{ source('itrack', 'feedback_runs') }}
),

renamed as (
    select
        run_id as feedback_run_id,
        feeder_source,
        metrics,
        written_at
    from source
)

select * from renamed
