-- One row per data-quality check, every check present (0 when clean): records the contract
-- accepts but the marts cannot use fully. They never stop a build; `itrack build` prints the
-- checks that found something (feedback/data_quality.py).
with

stages as (
    select * from {{ ref('fct_interview_stages') }}
),

processes as (
    select * from {{ ref('fct_interview_processes') }}
),

history as (
    select * from {{ ref('fct_process_status_history') }}
),

unmapped_names as (
    select stage_name_clean as example, count(*) as n
    from stages
    where is_unmapped_stage_name
    {{ group_by(1) }}
),

checks as (
    select
        'unmapped_stage_names' as check_name,
        'stages whose name maps to no stage type (counted as `other`); add the names to seed stage_types'
            as description,
        'stages' as unit,
        (select count(*) from stages where is_unmapped_stage_name) as affected,
        (select {{ json_objects_agg([('value', 'example'), ('count', 'n')], 'n desc, example') }}
         from unmapped_names) as examples
    union all
    select
        'decided_before_start',
        'processes decided before they started (created_at corrected after the decision); days_to_decision left null',
        'processes',
        (select count(*) from processes where is_decided_before_start),
        null
    union all
    select
        'status_history_out_of_order',
        'status intervals that end before they start, or start after the build time; days_in_status left null',
        'status intervals',
        (select count(*) from history where is_out_of_order),
        null
    union all
    select
        'started_in_future',
        'processes created after the build time (within the ingest tolerance)',
        'processes',
        (select count(*) from processes where started_at > {{ as_of() }}),
        null
),

final as (
    select
        check_name,
        description,
        unit,
        affected,
        coalesce(examples, {{ empty_json_array() }}) as examples
    from checks
)

select * from final
