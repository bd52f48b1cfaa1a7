-- Per interviewer: volume, pass rate, ratings against the stage-type average (harsh or
-- lenient), and adherence (completed stages with a rating and notes filled in).
with

stages as (
    select * from {{ ref('fct_interview_stages') }}
),

type_averages as (
    select stage_type, avg(overall_rating) as type_avg_overall_rating
    from stages
    group by all
),

by_interviewer as (
    select
        stages.*,
        unnest(stages.interviewer_names) as interviewer_name
    from stages
),

final as (
    select
        by_interviewer.interviewer_name,
        count(*) as stages,
        count(*) filter (where outcome in ('passed', 'failed')) as decided_stages,
        {{ safe_divide("count(*) filter (where outcome = 'passed')",
                       "count(*) filter (where outcome in ('passed', 'failed'))") }} as pass_rate,
        avg(overall_rating) as avg_overall_rating,
        stddev_samp(overall_rating) as stddev_overall_rating,
        avg(overall_rating - type_averages.type_avg_overall_rating)
            as avg_rating_vs_stage_type,
        {{ safe_divide("count(*) filter (where completed_date is not null
                            and overall_rating is not null and feedback_notes is not null)",
                       "count(*) filter (where completed_date is not null)") }} as adherence
    from by_interviewer
    left join type_averages using (stage_type)
    group by all
)

select * from final
