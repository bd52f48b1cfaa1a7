-- Incremental: only raw rows this table does not hold yet (new, or changed however: their
-- hash differs) are copied, replacing the row of the same key; rows gone from the raw table
-- (a restored backup) are deleted after. `itrack build` runs a full refresh whenever the dbt
-- project changed, so every row is always computed by the current SQL.
{{ config(
    materialized='incremental',
    unique_key='candidate_id',
    incremental_strategy='delete+insert',
    on_schema_change='fail',
    post_hook="{{ delete_rows_gone_from_source('candidates', 'candidate_id', 'id') }}",
) }}

with

source as (
    select
        raw.*,
        {{ row_hash('raw') }} as source_row_hash
    from {{ source('itrack', 'candidates') }} as raw
    {{ new_raw_rows('candidate_id', 'id') }}
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
        _loaded_at as loaded_at,
        source_row_hash
    from source
)

select * from renamed
