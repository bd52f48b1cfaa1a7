-- One row per process: what it ever reached at each canonical stage type.
-- entered = has a stage of that type; passed = any such stage passed;
-- failed = one failed and none passed; otherwise pending there.
with

stages as (
    select * from {{ ref('int_stages_typed') }}
),

per_type as (
    select
        interview_process_id,
        stage_type,
        bool_or(outcome = 'passed') as passed,
        bool_or(outcome = 'failed') and not bool_or(outcome = 'passed') as failed
    from stages
    group by all
),

per_process as (
    select
        interview_process_id,
        count(*) as stages_count,
        count(*) filter (where outcome <> 'pending') as decided_stages_count,
        count(*) filter (where outcome = 'failed') as failed_stages_count,
        count(*) filter (where completed_date is not null or outcome in ('passed', 'failed'))
            as completed_stages_count,
        max(stage_order) as max_stage_order
    from stages
    group by all
),

pivoted as (
    select
        per_process.*,
        {% for t in ['phone_screen', 'technical', 'onsite', 'other'] %}
        coalesce(bool_or(per_type.stage_type = '{{ t }}'), false) as {{ t }}_entered,
        coalesce(bool_or(per_type.stage_type = '{{ t }}' and per_type.passed), false)
            as {{ t }}_passed,
        coalesce(bool_or(per_type.stage_type = '{{ t }}' and per_type.failed), false)
            as {{ t }}_failed,
        {% endfor %}
    from per_process
    left join per_type using (interview_process_id)
    group by all
)

select * from pivoted
