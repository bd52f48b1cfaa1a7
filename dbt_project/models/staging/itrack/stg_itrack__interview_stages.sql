-- Incremental: only raw rows this table does not hold yet (new, or changed however: their
-- hash differs) are copied, replacing the row of the same key; rows gone from the raw table
-- (a restored backup) are deleted after. `itrack build` runs a full refresh whenever the dbt
-- project changed, so every row is always computed by the current SQL.
{{ config(
    materialized='incremental',
    unique_key='interview_stage_id',
    incremental_strategy='delete+insert',
    on_schema_change='fail',
    post_hook="{{ delete_rows_gone_from_source('interview_stages', 'interview_stage_id', 'id') }}",
) }}

with

source as (
    select
        raw.*,
        {{ row_hash('raw') }} as source_row_hash
    from {{ source('itrack', 'interview_stages') }} as raw
    {{ new_raw_rows('interview_stage_id', 'id') }}
),

renamed as (
    select
        id as interview_stage_id,
        interview_process_id,
        stage_name,
        {{ clean_text('stage_name') }} as stage_name_clean,
        {{ normalize_name('stage_name', fold_separators=true) }} as stage_name_normalized,
        stage_order,
        scheduled_date,
        completed_date,
        outcome,
        overall_rating,
        technical_rating,
        culture_fit_rating,
        communication_rating,
        feedback_notes,
        interviewer_names,
        next_steps,
        created_at,
        updated_at,
        _run_id as run_id,
        _loaded_at as loaded_at,
        source_row_hash
    from source
)

select * from renamed
