-- Per canonical stage type and per raw stage name (column `grain`): outcomes, ratings, timing
-- and the most common feedback terms of passed and of failed stages.
{% set top = var('feedback_top_terms') %}
with

stages as (
    select * from {{ ref('fct_interview_stages') }}
),

stop_words as (
    select word from {{ ref('feedback_stop_words') }}
),

-- Notes repeat a lot (templates, copy-paste): tokenise each distinct note once, weighted by
-- how often it occurs, instead of once per stage. Words are runs of 3+ letters.
distinct_notes as (
    select stage_type, stage_name, outcome, lower(feedback_notes) as notes, count(*) as copies
    from stages
    where outcome in ('passed', 'failed') and feedback_notes is not null
    group by all
),

note_terms as (
    select stage_type, stage_name, outcome, copies,
           unnest(regexp_extract_all(notes, '\p{L}{3,}')) as term
    from distinct_notes
),

terms_by_name as (
    select stage_type, stage_name, outcome, term, sum(copies)::bigint as n
    from note_terms
    where term not in (select word from stop_words)
    group by all
),

terms as (
    select 'stage_type' as grain, stage_type as group_key, outcome, term, sum(n)::bigint as n
    from terms_by_name
    group by all
    union all
    select 'stage_name' as grain, stage_name as group_key, outcome, term, sum(n)::bigint as n
    from terms_by_name
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
    -- both grains in one pass: (stage_type) and (stage_type, stage_name); a raw name always
    -- maps to one type
    select
        case when grouping(stage_name) = 1 then 'stage_type' else 'stage_name' end as grain,
        case when grouping(stage_name) = 1 then stage_type else stage_name end as group_key,
        stage_type,
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
    from stages
    group by grouping sets ((stage_type), (stage_type, stage_name))
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
