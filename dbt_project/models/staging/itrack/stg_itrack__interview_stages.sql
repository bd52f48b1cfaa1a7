with

source as (
    select * from {{ source('itrack', 'interview_stages') }}
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
        _loaded_at as loaded_at
    from source
)

select * from renamed
