with

source as (
    select * from {{ source('itrack', 'candidates') }}
),

renamed as (
    select
        id as candidate_id,
        full_name,
        nullif({{ clean_text('feeder_source') }}, '') as feeder_source,
        nullif({{ normalize_name('feeder_source') }}, '') as feeder_key,
        current_company,
        linkedin_url,
        created_at,
        updated_at,
        _run_id as run_id,
        _loaded_at as loaded_at
    from source
)

select * from renamed
