-- Incremental: only raw rows this table does not hold yet (new, or changed however: their
-- hash differs) are copied, replacing the row of the same key; rows gone from the raw table
-- (a restored backup) are deleted after. `itrack build` runs a full refresh whenever the dbt
-- project changed, so every row is always computed by the current SQL.
{{ config(
    materialized='incremental',
    unique_key='interview_process_id',
    incremental_strategy='delete+insert',
    on_schema_change='fail',
    post_hook="{{ delete_rows_gone_from_source('interview_processes', 'interview_process_id', 'id') }}",
) }}

with

source as (
    select
        raw.*,
        {{ row_hash('raw') }} as source_row_hash
    from {{ source('itrack', 'interview_processes') }} as raw
    {{ new_raw_rows('interview_process_id', 'id') }}
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
        _loaded_at as loaded_at,
        source_row_hash
    from source
)

select * from renamed
