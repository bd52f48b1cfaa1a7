-- Incremental: only raw rows this table does not hold yet (matched by their hash: the raw
-- table has no key) are appended; rows gone from the raw table (a restored backup) are deleted
-- after. `itrack build` runs a full refresh whenever the dbt project changed.
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail',
    post_hook="{{ delete_rows_gone_from_source('interview_status_history') }}",
) }}

with

source as (
    select
        raw.*,
        {{ row_hash('raw') }} as source_row_hash
    from {{ source('itrack', 'interview_status_history') }} as raw
    {{ new_raw_rows() }}
),

renamed as (
    select
        interview_process_id,
        from_status,
        to_status,
        changed_at,
        run_id,
        source as recorded_by,
        recorded_at,
        source_row_hash
    from source
)

select * from renamed
