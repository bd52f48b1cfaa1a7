-- One row per process that has stages: what it ever reached at each stage type.
-- entered = has a stage of that type (any outcome); passed = any such stage passed (a passed
-- retake wins over an earlier failure); failed = one failed and none passed; otherwise it is
-- still pending there (or its stages there were cancelled / no-shows).
with

stages as (
    select * from {{ ref('int_stages_typed') }}
),

canonical as (
    select * from {{ ref('canonical_stage_types') }}
),

per_type as (
    select
        interview_process_id,
        stage_type,
        bool_or(outcome = 'passed') as passed,
        bool_or(outcome = 'failed') and not bool_or(outcome = 'passed') as failed
    from stages
    {{ group_by(2) }}
),

per_process as (
    select
        interview_process_id,
        count(*) as stages_count,
        count(*) filter (where outcome <> 'pending') as decided_stages_count,
        count(*) filter (where outcome = 'failed') as failed_stages_count,
        count(*) filter (where outcome = 'passed') as passed_stages_count,
        count(*) filter (where outcome = 'pending') as pending_stages_count,
        count(*) filter (where is_completed) as completed_stages_count,
        max(stage_order) as max_stage_order
    from stages
    {{ group_by(1) }}
),

pivoted as (
    select
        per_type.interview_process_id,
        {% for t in var('stage_types') + [var('unmapped_stage_type')] %}
        coalesce(bool_or(per_type.stage_type = '{{ t }}'), false) as {{ t }}_entered,
        coalesce(bool_or(per_type.stage_type = '{{ t }}' and per_type.passed), false)
            as {{ t }}_passed,
        coalesce(bool_or(per_type.stage_type = '{{ t }}' and per_type.failed), false)
            as {{ t }}_failed,
        {% endfor %}
        bool_or(per_type.failed) as has_unpassed_failure,
        max(canonical.funnel_position) as furthest_funnel_position
    from per_type
    left join canonical on per_type.stage_type = canonical.stage_type
    {{ group_by(1) }}
),

furthest as (
    select
        pivoted.*,
        coalesce(canonical.stage_type, '{{ var("unmapped_stage_type") }}')
            as furthest_stage_reached
    from pivoted
    left join canonical on pivoted.furthest_funnel_position = canonical.funnel_position
),

final as (
    select
        per_process.*,
        {% for t in var('stage_types') + [var('unmapped_stage_type')] %}
        furthest.{{ t }}_entered,
        furthest.{{ t }}_passed,
        furthest.{{ t }}_failed,
        {% endfor %}
        furthest.has_unpassed_failure,
        furthest.furthest_stage_reached
    from per_process
    inner join furthest on per_process.interview_process_id = furthest.interview_process_id
)

select * from final
