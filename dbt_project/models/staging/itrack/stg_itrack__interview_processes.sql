with

source as (
    select * from {{ source('itrack', 'interview_processes') }}
),

renamed as (
    select
        id as interview_process_id,
        candidate_id,
        {{ clean_text('company_name') }} as company_name,
        {{ normalize_name('company_name') }} as company_key,
        role_title,
        status,
        nullif({{ clean_text('feeder_source') }}, '') as feeder_source,
        nullif({{ normalize_name('feeder_source') }}, '') as feeder_key,
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
