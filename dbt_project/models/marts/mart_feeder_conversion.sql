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
    select * from {{ ref('int_processes_rejection_reasons') }}
),

top_reasons as (
    {{ rejection_reason_lists('reasons', 'feeder_key', 'top_rejection_reasons', top=5) }}
),

per_feeder as (
    select
        feeder_key,
        min(feeder_source) as feeder_source,
        count(*) as candidates_sourced,
        count(*) filter (where is_placement) as placements,
        count(*) filter (where is_terminal) as decided_processes,
        {% for t in var('stage_types') %}
        {{ safe_divide("count(*) filter (where " ~ t ~ "_passed)",
                       "count(*) filter (where " ~ t ~ "_passed or " ~ t ~ "_failed)") }}
            as {{ t }}_pass_rate,
        {% endfor %}
        {{ mean_elapsed_days("case when is_placement and elapsed_days_to_hire is not null then "
                             ~ elapsed_microseconds('started_at', 'placed_at') ~ " end") }}
            as avg_days_to_hire,
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
    {{ group_by(1) }}
),

metrics as (
    {% set p = "(" ~ as_double('per_feeder.placements') ~ " / per_feeder.candidates_sourced)" %}
    {% set n = as_double('per_feeder.candidates_sourced') %}
    select
        per_feeder.feeder_source,
        per_feeder.candidates_sourced,
        per_feeder.candidates_sourced as processes_started,
        per_feeder.placements,
        {{ safe_divide('per_feeder.placements', 'per_feeder.candidates_sourced') }}
            as conversion_rate,
        per_feeder.decided_processes,
        {{ safe_divide('per_feeder.placements', 'per_feeder.decided_processes') }}
            as decided_conversion_rate,
        -- clamped: the bounds are in [0, 1] mathematically, not always in floating point
        greatest(0.0, ({{ p }} + {{ z * z }} / (2 * {{ n }})
            - {{ z }} * sqrt({{ p }} * (1 - {{ p }}) / {{ n }} + {{ z * z }} / (4 * {{ n }} * {{ n }})))
            / (1 + {{ z * z }} / {{ n }})) as wilson_lower,
        least(1.0, ({{ p }} + {{ z * z }} / (2 * {{ n }})
            + {{ z }} * sqrt({{ p }} * (1 - {{ p }}) / {{ n }} + {{ z * z }} / (4 * {{ n }} * {{ n }})))
            / (1 + {{ z * z }} / {{ n }})) as wilson_upper,
        (per_feeder.placements + {{ k }} * overall.prior_rate) / (per_feeder.candidates_sourced + {{ k }})
            as smoothed_conversion_rate,
        {% for t in var('stage_types') %}
        per_feeder.{{ t }}_pass_rate,
        {% endfor %}
        per_feeder.avg_days_to_hire,
        coalesce(top_reasons.top_rejection_reasons, {{ empty_json_array() }})
            as top_rejection_reasons,
        per_feeder.pipeline_depth,
        per_feeder.feeder_key
    from per_feeder
    cross join overall
    left join top_reasons on per_feeder.feeder_key = top_reasons.feeder_key
)

select * from metrics
