-- Per stage type and per stage name (column `grain`): outcomes, ratings, timing and the most
-- common feedback terms of passed and of failed stages. Stage names are grouped by their
-- normalised key (`stage_name_key`) and shown by their most frequent spelling.
{% set top = var('feedback_top_terms') %}
with

stages as (
    select * from {{ ref('fct_interview_stages') }}
),

stop_words as (
    select word from {{ ref('feedback_stop_words') }}
),

-- one display spelling per normalised stage name: the most frequent, ties to the smallest
name_display as (
    {{ most_frequent_spelling('stages', 'stage_name_normalized', 'stage_name_clean', 'stage_name_display') }}
),

-- Notes repeat a lot (templates, copy-paste): tokenise each distinct note once, weighted by
-- how often it occurs, instead of once per stage. Words are runs of 3+ letters.
distinct_notes as (
    select stage_type, stage_name_normalized, outcome, lower(feedback_notes) as notes,
           count(*) as copies
    from stages
    where outcome in ('passed', 'failed') and feedback_notes is not null
    {{ group_by(4) }}
),

note_terms as (
    select stage_type, stage_name_normalized, outcome, copies,
           {{ extract_words('notes') }} as term
    from distinct_notes
),

terms_by_name as (
    select stage_type, stage_name_normalized, outcome, term, sum(copies) as n
    from note_terms
    where term not in (select word from stop_words)
    {{ group_by(4) }}
),

terms as (
    select 'stage_type' as grain, stage_type as group_id, outcome, term, sum(n) as n
    from terms_by_name
    {{ group_by(4) }}
    union all
    select 'stage_name' as grain, stage_name_normalized as group_id, outcome, term, sum(n) as n
    from terms_by_name
    {{ group_by(4) }}
),

ranked_terms as (
    select
        grain,
        group_id,
        outcome,
        term,
        cast(n as bigint) as n,
        row_number() over (partition by grain, group_id, outcome order by n desc, term)
            as term_rank
    from terms
),

top_terms as (
    select grain, group_id, outcome,
        {{ json_objects_agg([('term', 'term'), ('count', 'n')], 'n desc, term') }} as top_terms
    from ranked_terms
    where term_rank <= {{ top }}
    {{ group_by(3) }}
),

aggregated as (
    -- both grains in one pass: (stage_type) and (stage_type, stage name key); a name always
    -- maps to one type
    select
        case when grouping(stage_name_normalized) = 1 then 'stage_type' else 'stage_name' end
            as grain,
        case when grouping(stage_name_normalized) = 1 then stage_type else stage_name_normalized end
            as group_id,
        stage_type,
        stage_name_normalized as stage_name_key,
        count(*) as stages,
        count(*) filter (where outcome = 'passed') as passed,
        count(*) filter (where outcome = 'failed') as failed,
        count(*) filter (where outcome = 'pending') as pending,
        count(*) filter (where outcome = 'cancelled') as cancelled,
        count(*) filter (where outcome = 'no_show') as no_show,
        {{ safe_divide("count(*) filter (where outcome = 'passed')",
                       "count(*) filter (where outcome in ('passed', 'failed'))") }} as pass_rate,
        avg(overall_rating) as avg_overall_rating,
        avg(technical_rating) as avg_technical_rating,
        avg(culture_fit_rating) as avg_culture_fit_rating,
        avg(communication_rating) as avg_communication_rating,
        -- over the stages that took place (is_completed): a cancelled or no-show stage's
        -- dates time nothing that happened
        {{ median_elapsed_days("case when is_completed then "
                               ~ elapsed_microseconds('scheduled_date', 'completed_date') ~ " end") }}
            as median_days_scheduled_to_completed
    from stages
    group by grouping sets ((stage_type), (stage_type, stage_name_normalized))
),

final as (
    select
        {{ surrogate_key(['aggregated.grain', 'aggregated.group_id']) }} as stage_group_id,
        aggregated.grain,
        coalesce(name_display.stage_name_display, aggregated.stage_type) as group_key,
        aggregated.stage_type,
        aggregated.stages,
        aggregated.passed,
        aggregated.failed,
        aggregated.pending,
        aggregated.pass_rate,
        aggregated.avg_overall_rating,
        aggregated.avg_technical_rating,
        aggregated.avg_culture_fit_rating,
        aggregated.avg_communication_rating,
        aggregated.median_days_scheduled_to_completed,
        coalesce(passed_terms.top_terms, {{ empty_json_array() }}) as top_terms_passed,
        coalesce(failed_terms.top_terms, {{ empty_json_array() }}) as top_terms_failed,
        aggregated.stage_name_key,
        aggregated.cancelled,
        aggregated.no_show
    from aggregated
    left join name_display on aggregated.stage_name_key = name_display.stage_name_normalized
    left join top_terms as passed_terms
        on aggregated.grain = passed_terms.grain
        and aggregated.group_id = passed_terms.group_id
        and passed_terms.outcome = 'passed'
    left join top_terms as failed_terms
        on aggregated.grain = failed_terms.grain
        and aggregated.group_id = failed_terms.group_id
        and failed_terms.outcome = 'failed'
)

select * from final
