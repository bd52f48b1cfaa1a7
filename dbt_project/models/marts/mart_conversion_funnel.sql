-- The conversion funnel, one row per grouping (see the model docs for the definitions).
-- Feeders and companies are grouped by their normalised key and shown by their display name.
with

processes as (
    select * from {{ ref('fct_interview_processes') }}
),

grouped as (
    {% set groupings = [
        ('overall', "'all'", 'null', 'null', 'null', 'null', 'null'),
        ('feeder_source', 'feeder_source', 'feeder_source', 'feeder_key', 'null', 'null', 'null'),
        ('company_name', 'company_name', 'null', 'null', 'company_name', 'company_key', 'null'),
        ('feeder_company', "feeder_source || ' @ ' || company_name", 'feeder_source', 'feeder_key',
         'company_name', 'company_key', 'null'),
        ('cohort_month', format_month('cohort_month'), 'null', 'null', 'null', 'null', 'cohort_month'),
    ] %}
    {% for grain, label, feeder, feeder_key, company, company_key, cohort in groupings %}
    select
        '{{ grain }}' as grain,
        {{ label }} as group_key,
        cast({{ feeder }} as varchar) as feeder_source,
        cast({{ feeder_key }} as varchar) as feeder_key,
        cast({{ company }} as varchar) as company_name,
        cast({{ company_key }} as varchar) as company_key,
        cast({{ cohort }} as date) as cohort_month,
        count(*) as total_started,
        {% for t in var('stage_types') %}
        count(*) filter (where {{ t }}_entered) as {{ t }}_entered,
        count(*) filter (where {{ t }}_passed) as {{ t }}_passed,
        count(*) filter (where {{ t }}_failed) as {{ t }}_failed,
        {% endfor %}
        count(*) filter (where reached_offer) as offers_extended,
        count(*) filter (where cleared_interviewing) as cleared_interviewing,
        count(*) filter (where is_placement) as offers_accepted,
        count(*) filter (where is_offer_declined) as offers_declined,
        count(*) filter (where is_offer_pending) as offers_pending,
        count(*) filter (where is_offer_withdrawn) as offers_withdrawn,
        count(*) filter (where is_offer_rescinded) as offers_rescinded,
        count(*) filter (where is_in_flight) as in_flight
    from processes
    {{ group_by(7) }}
    having count(*) > 0  -- no `overall` row without processes, on every engine
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

rates as (
    select
        {{ surrogate_key(['grain', 'feeder_key', 'company_key', 'cohort_month']) }}
            as funnel_row_id,
        grain,
        group_key,
        feeder_source,
        company_name,
        cohort_month,
        total_started,
        total_started as processes_started,
        {% for t in var('stage_types') %}
        {{ t }}_entered,
        {{ t }}_passed,
        {{ t }}_failed,
        {{ safe_divide(t ~ '_passed', t ~ '_passed + ' ~ t ~ '_failed') }} as {{ t }}_pass_rate,
        {% endfor %}
        offers_extended,
        cleared_interviewing,
        {{ safe_divide('offers_extended', 'cleared_interviewing') }} as offer_extended_rate,
        {{ safe_divide('offers_extended', 'total_started') }} as offer_rate,
        {{ safe_divide('offers_extended', 'cleared_interviewing') }}
            as offer_rate_after_interviews,
        offers_accepted,
        offers_declined,
        {{ safe_divide('offers_accepted', 'offers_accepted + offers_declined + offers_withdrawn') }}
            as offer_accepted_rate,
        in_flight,
        offers_pending,
        offers_withdrawn,
        offers_rescinded,
        feeder_key,
        company_key
    from grouped
)

select * from rates
