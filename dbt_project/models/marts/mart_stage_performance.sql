-- Per canonical stage type and per raw stage name (column `grain`): outcomes, ratings, timing
-- and the most common feedback terms of passed and of failed stages.
{% set top = var('feedback_top_terms') %}
with

stages as (
    select * from {{ ref('int_stages_typed') }}
),

stop_words as (
    select word from {{ ref('feedback_stop_words') }}
),

keyed as (
    select 'stage_type' as grain, stage_type as group_key, stage_type, * exclude (stage_type)
    from stages
    union all by name
    select 'stage_name' as grain, stage_name as group_key, stage_type, * exclude (stage_type)
    from stages
),

terms as (
    select grain, group_key, outcome, term, count(*) as n
    from (
        select grain, group_key, outcome,
               unnest(regexp_split_to_array(lower(feedback_notes), '[^a-z]+')) as term
        from keyed
        where outcome in ('passed', 'failed') and feedback_notes is not null
    )
    where length(term) >= 3 and term not in (select word from stop_words)
    group by all
),

top_terms as (
    select grain, group_key,
        to_json(list(struct_pack(term := term, count := n) order by n desc, term)
                filter (where outcome = 'passed')[1:{{ top }}]) as top_terms_passed,
        to_json(list(struct_pack(term := term, count := n) order by n desc, term)
                filter (where outcome = 'failed')[1:{{ top }}]) as top_terms_failed
    from terms
    group by all
),

aggregated as (
    select
        grain,
        group_key,
        any_value(stage_type) as stage_type,
        count(*) as stages,
        count(*) filter (where outcome = 'passed') as passed,
        count(*) filter (where outcome = 'failed') as failed,
        count(*) filter (where outcome = 'pending') as pending,
        {{ safe_divide("count(*) filter (where outcome = 'passed')",
                       "count(*) filter (where outcome in ('passed', 'failed'))") }} as pass_rate,
        avg(overall_rating) as avg_overall_rating,
        avg(technical_rating) as avg_technical_rating,
        avg(culture_fit_rating) as avg_culture_fit_rating,
        avg(communication_rating) as avg_communication_rating,
        median(days_scheduled_to_completed) as median_days_scheduled_to_completed
    from keyed
    group by all
),

final as (
    select
        {{ surrogate_key(['aggregated.grain', 'aggregated.group_key']) }} as stage_group_id,
        aggregated.*,
        coalesce(top_terms.top_terms_passed, '[]')::json as top_terms_passed,
        coalesce(top_terms.top_terms_failed, '[]')::json as top_terms_failed
    from aggregated
    left join top_terms using (grain, group_key)
)

select * from final
