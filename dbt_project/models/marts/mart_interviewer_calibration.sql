-- Per interviewer (normalised name key, display name): volume, pass rate, ratings against the
-- stage-type average (harsh or lenient), and adherence. An interviewer listed twice on one
-- stage (in any spelling) sits in it once.
with

stages as (
    select * from {{ ref('fct_interview_stages') }}
),

type_totals as (
    select stage_type, count(overall_rating) as rated, sum(overall_rating) as rating_total
    from stages
    {{ group_by(1) }}
),

listed as (
    select interview_stage_id, unnest(interviewer_names) as interviewer
    from stages
),

-- each distinct spelling cleaned and keyed once (a few hundred), not once per listing:
-- materialized, or the optimizer moves the cleaning across the join below onto every listing
-- (2M at 1M records: 3.0 -> 1.8 CPU seconds)
spellings as materialized (
    select
        interviewer,
        {{ clean_text('interviewer') }} as interviewer_spelling,
        {{ normalize_name('interviewer') }} as interviewer_key
    from (select distinct interviewer from listed) as raw_spellings
),

-- read twice below (display names, who sat in): computed once
keyed as materialized (
    select listed.interview_stage_id, spellings.interviewer_spelling, spellings.interviewer_key
    from listed
    inner join spellings on listed.interviewer = spellings.interviewer
    where spellings.interviewer_spelling <> ''
),

-- one display spelling per key: the most frequent listing, ties to the smallest
names as (
    {{ most_frequent_spelling('keyed', 'interviewer_key', 'interviewer_spelling', 'interviewer_name') }}
),

sat_in as (
    select distinct interview_stage_id, interviewer_key
    from keyed
),

by_interviewer as (
    select sat_in.interviewer_key, stages.*
    from sat_in
    inner join stages on sat_in.interview_stage_id = stages.interview_stage_id
),

-- the sum over an interviewer's rated stages of (rating - the stage type's average), per
-- type: ratings total - rated stages x type total / type rated (one division: exact inputs)
vs_type_parts as (
    select
        by_interviewer.interviewer_key,
        by_interviewer.stage_type,
        sum(by_interviewer.overall_rating)
            - {{ as_double('count(by_interviewer.overall_rating) * type_totals.rating_total') }}
            / type_totals.rated as vs_type
    from by_interviewer
    inner join type_totals on by_interviewer.stage_type = type_totals.stage_type
    where by_interviewer.overall_rating is not null
    group by by_interviewer.interviewer_key, by_interviewer.stage_type,
        type_totals.rating_total, type_totals.rated
),

-- added in a fixed order (funnel order, then the unmapped type): the same double every run
vs_type as (
    select
        interviewer_key,
        {% for t in var('stage_types') + [var('unmapped_stage_type')] -%}
        coalesce(max(vs_type) filter (where stage_type = '{{ t }}'), 0)
        {%- if not loop.last %} + {% endif %}
        {%- endfor %} as vs_type_total
    from vs_type_parts
    {{ group_by(1) }}
),

per_interviewer as (
    select
        by_interviewer.interviewer_key,
        count(*) as stages,
        count(*) filter (where by_interviewer.is_decided) as decided_stages,
        {{ safe_divide("count(*) filter (where by_interviewer.outcome = 'passed')",
                       "count(*) filter (where by_interviewer.is_decided)") }} as pass_rate,
        avg(by_interviewer.overall_rating) as avg_overall_rating,
        {{ stddev_of_integers('by_interviewer.overall_rating') }} as stddev_overall_rating,
        {{ safe_divide("count(*) filter (where by_interviewer.is_completed
                            and by_interviewer.overall_rating is not null
                            and by_interviewer.feedback_notes is not null)",
                       "count(*) filter (where by_interviewer.is_completed)") }} as adherence,
        count(by_interviewer.overall_rating) as rated_stages
    from by_interviewer
    {{ group_by(1) }}
),

final as (
    select
        names.interviewer_name,
        per_interviewer.stages,
        per_interviewer.decided_stages,
        per_interviewer.pass_rate,
        per_interviewer.avg_overall_rating,
        per_interviewer.stddev_overall_rating,
        vs_type.vs_type_total / nullif(per_interviewer.rated_stages, 0)
            as avg_rating_vs_stage_type,
        per_interviewer.adherence,
        per_interviewer.interviewer_key
    from per_interviewer
    inner join names on per_interviewer.interviewer_key = names.interviewer_key
    left join vs_type on per_interviewer.interviewer_key = vs_type.interviewer_key
)

select * from final
