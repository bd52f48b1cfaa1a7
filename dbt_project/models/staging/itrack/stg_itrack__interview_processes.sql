with

source as (
    select * from {{ source('itrack', 'interview_processes') }}
),

renamed as (
    select
        id as interview_process_id,
        candidate_id,
        company_name,
        role_title,
        status,
        nullif(trim(feeder_source), '') as feeder_source,
        recruiter_name,
        final_outcome,
        offer_details,
        offer_details is not null as has_offer_details,
        created_at,
        updated_at,
        _run_id as run_id,
        _loaded_at as loaded_at
    from source
)

select * from renamed
