-- One row per stage with its canonical stage type (seed `stage_types` on the normalised name;
-- unmapped -> `other`) and the stage-level definitions every mart shares.
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
        coalesce(stage_types.stage_type, '{{ var("unmapped_stage_type") }}') as stage_type,
        stage_types.stage_type is null as is_unmapped_stage_name,
        stages.outcome in ('passed', 'failed') as is_decided,
        -- the interview took place: decided, or pending with a completion date
        -- (never a cancelled or no-show stage, whatever its dates)
        stages.outcome in ('passed', 'failed')
            or (stages.outcome = 'pending' and stages.completed_date is not null)
            as is_completed,
        {{ whole_days('stages.scheduled_date', 'stages.completed_date') }}
            as days_scheduled_to_completed,
        {{ elapsed_days('stages.scheduled_date', 'stages.completed_date') }}
            as elapsed_days_scheduled_to_completed
    from stages
    left join stage_types
        on stages.stage_name_normalized = stage_types.stage_name_normalized
)

select * from typed
