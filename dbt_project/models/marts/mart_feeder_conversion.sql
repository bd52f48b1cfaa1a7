-- Per feeder: the seed's feedback metric (placements / candidates sourced) and its context.
{% set z = 1.96 %}
{% set k = var('feeder_prior_strength') %}
with

processes as (
    select * from {{ ref('fct_interview_processes') }}
),

overall as (
    select {{ safe_divide('count(*) filter (where is_placement)', 'count(*)') }} as prior_rate
    from processes
),

reasons as (
    select feeder_source, coalesce({{ normalize_text('final_outcome') }}, 'unspecified') as reason,
           count(*) as n
    from processes
    where status = 'rejected_by_company'
    group by all
),

top_reasons as (
    select
        feeder_source,
        to_json(list(struct_pack(reason := reason, count := n) order by n desc, reason)[1:5])
            as top_rejection_reasons
    from reasons
    group by all
),

per_feeder as (
    select
        feeder_source,
        count(*) as candidates_sourced,
        count(*) filter (where is_placement) as placements,
        count(*) filter (where is_terminal) as decided_processes,
        {% for t in ['phone_screen', 'technical', 'onsite'] %}
        {{ safe_divide("count(*) filter (where " ~ t ~ "_passed)",
                       "count(*) filter (where " ~ t ~ "_passed or " ~ t ~ "_failed)") }}
            as {{ t }}_pass_rate,
        {% endfor %}
        avg({{ dbt.datediff('started_at', 'placed_at', 'day') }})
            filter (where is_placement) as avg_days_to_hire,
        -- how far along the canonical pipeline (phone screen -> technical -> onsite -> offer
        -- -> accepted) each finished process got, as a share of the 4 steps after entry
        avg(case
                when is_placement then 4
                when reached_offer then 3
                when onsite_entered then 2
                when technical_entered then 1
                else 0
            end / 4.0) filter (where is_terminal) as pipeline_depth
    from processes
    group by all
),

metrics as (
    select
        per_feeder.feeder_source,
        per_feeder.candidates_sourced,
        per_feeder.placements,
        {{ safe_divide('placements', 'candidates_sourced') }} as conversion_rate,
        per_feeder.decided_processes,
        {{ safe_divide('placements', 'decided_processes') }} as decided_conversion_rate,
        -- clamped: the bounds are in [0, 1] mathematically, not always in floating point
        greatest(0.0, (placements / candidates_sourced + {{ z * z }} / (2 * candidates_sourced)
            - {{ z }} * sqrt(placements / candidates_sourced * (1 - placements / candidates_sourced)
                        / candidates_sourced + {{ z * z }} / (4 * candidates_sourced ^ 2)))
            / (1 + {{ z * z }} / candidates_sourced)) as wilson_lower,
        least(1.0, (placements / candidates_sourced + {{ z * z }} / (2 * candidates_sourced)
            + {{ z }} * sqrt(placements / candidates_sourced * (1 - placements / candidates_sourced)
                        / candidates_sourced + {{ z * z }} / (4 * candidates_sourced ^ 2)))
            / (1 + {{ z * z }} / candidates_sourced)) as wilson_upper,
        (placements + {{ k }} * overall.prior_rate) / (candidates_sourced + {{ k }})
            as smoothed_conversion_rate,
        per_feeder.phone_screen_pass_rate,
        per_feeder.technical_pass_rate,
        per_feeder.onsite_pass_rate,
        per_feeder.avg_days_to_hire,
        coalesce(top_reasons.top_rejection_reasons, '[]')::json as top_rejection_reasons,
        per_feeder.pipeline_depth
    from per_feeder
    cross join overall
    left join top_reasons using (feeder_source)
)

select * from metrics
