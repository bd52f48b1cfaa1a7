-- One row per process that has stages: what it ever reached at each stage type.
-- entered = has a stage of that type (any outcome); passed = any such stage passed (a passed
-- retake wins over an earlier failure); failed = one failed and none passed; otherwise it is
-- still pending there (or its stages there were cancelled / no-shows). One pass over the
-- stages grouped by process: a stage's type is a canonical one (seed `stage_types` maps only to
-- `canonical_stage_types`, tested; var `stage_types` lists them, tested) or the unmapped type,
-- so one column per type covers every type a process can have.
{%- set types = var('stage_types') + [var('unmapped_stage_type')] %}
with

stages as (
    select * from {{ ref('int_stages_typed') }}
),

canonical as (
    select * from {{ ref('canonical_stage_types') }}
),

per_process as (
    select
        stages.interview_process_id,
        count(*) as stages_count,
        count(*) filter (where stages.outcome <> 'pending') as decided_stages_count,
        count(*) filter (where stages.outcome = 'failed') as failed_stages_count,
        count(*) filter (where stages.outcome = 'passed') as passed_stages_count,
        count(*) filter (where stages.outcome = 'pending') as pending_stages_count,
        count(*) filter (where stages.is_completed) as completed_stages_count,
        max(stages.stage_order) as max_stage_order,
        {% for t in types %}
        bool_or(stages.stage_type = '{{ t }}') as {{ t }}_entered,
        bool_or(stages.stage_type = '{{ t }}' and stages.outcome = 'passed') as {{ t }}_passed,
        bool_or(stages.stage_type = '{{ t }}' and stages.outcome = 'failed')
            and not bool_or(stages.stage_type = '{{ t }}' and stages.outcome = 'passed')
            as {{ t }}_failed,
        {% endfor %}
        max(canonical.funnel_position) as furthest_funnel_position
    from stages
    left join canonical on stages.stage_type = canonical.stage_type
    {{ group_by(1) }}
),

final as (
    select
        per_process.interview_process_id,
        per_process.stages_count,
        per_process.decided_stages_count,
        per_process.failed_stages_count,
        per_process.passed_stages_count,
        per_process.pending_stages_count,
        per_process.completed_stages_count,
        per_process.max_stage_order,
        {% for t in types %}
        per_process.{{ t }}_entered,
        per_process.{{ t }}_passed,
        per_process.{{ t }}_failed,
        {% endfor %}
        {% for t in types %}per_process.{{ t }}_failed{% if not loop.last %} or {% endif %}{% endfor %}
            as has_unpassed_failure,
        coalesce(canonical.stage_type, '{{ var("unmapped_stage_type") }}')
            as furthest_stage_reached
    from per_process
    left join canonical on per_process.furthest_funnel_position = canonical.funnel_position
)

select * from final
