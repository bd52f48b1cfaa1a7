-- One row per stage with its canonical stage type (seed `stage_types`; unmapped -> other).
with

stages as (
    select * from {{ ref('stg_itrack__interview_stages') }}
),

stage_types as (
    select * from {{ ref('stage_types') }}
),

typed as (
    select
        stages.*,
        coalesce(stage_types.stage_type, 'other') as stage_type,
        stage_types.stage_type is null as is_unmapped_stage_name,
        stages.outcome in ('passed', 'failed') as is_decided,
        {{ dbt.datediff('stages.scheduled_date', 'stages.completed_date', 'day') }}
            as days_scheduled_to_completed
    from stages
    left join stage_types
        on stages.stage_name_normalized = stage_types.stage_name_normalized
)

select * from typed
