-- The conversion funnel, one row per grouping (see the model docs for the definitions).
with

processes as (
    select * from {{ ref('fct_interview_processes') }}
),

grouped as (
    {% set groupings = [
        ('overall', "'all'", 'null', 'null', 'null'),
        ('feeder_source', 'feeder_source', 'feeder_source', 'null', 'null'),
        ('company_name', 'company_name', 'null', 'company_name', 'null'),
        ('feeder_company', "feeder_source || ' @ ' || company_name", 'feeder_source', 'company_name', 'null'),
        ('cohort_month', "strftime(cohort_month, '%Y-%m')", 'null', 'null', 'cohort_month'),
    ] %}
    {% for grain, key, feeder, company, cohort in groupings %}
    select
        '{{ grain }}' as grain,
        {{ key }} as group_key,
        {{ feeder }}::varchar as feeder_source,
        {{ company }}::varchar as company_name,
        {{ cohort }}::date as cohort_month,
        count(*) as total_started,
        {% for t in ['phone_screen', 'technical', 'onsite'] %}
        count(*) filter (where {{ t }}_entered) as {{ t }}_entered,
        count(*) filter (where {{ t }}_passed) as {{ t }}_passed,
        count(*) filter (where {{ t }}_failed) as {{ t }}_failed,
        {% endfor %}
        count(*) filter (where reached_offer) as offers_extended,
        count(*) filter (where reached_offer and cleared_interviewing) as offers_after_clearing,
        count(*) filter (where cleared_interviewing) as cleared_interviewing,
        count(*) filter (where is_placement) as offers_accepted,
        count(*) filter (where is_offer_declined) as offers_declined,
        count(*) filter (where is_in_flight) as in_flight
    from processes
    group by all
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

rates as (
    select
        {{ surrogate_key(['grain', 'group_key']) }} as funnel_row_id,
        grain,
        group_key,
        feeder_source,
        company_name,
        cohort_month,
        total_started,
        {% for t in ['phone_screen', 'technical', 'onsite'] %}
        {{ t }}_entered,
        {{ t }}_passed,
        {{ t }}_failed,
        {{ safe_divide(t ~ '_passed', t ~ '_passed + ' ~ t ~ '_failed') }} as {{ t }}_pass_rate,
        {% endfor %}
        offers_extended,
        cleared_interviewing,
        {{ safe_divide('offers_after_clearing', 'cleared_interviewing') }} as offer_extended_rate,
        offers_accepted,
        offers_declined,
        {{ safe_divide('offers_accepted', 'offers_accepted + offers_declined') }}
            as offer_accepted_rate,
        in_flight
    from grouped
)

select * from rates
