-- Warn (not fail) when exported stage names are not in seed `stage_types`: they count as
-- `other`. The failing rows list the names to add to the seed.
{{ config(severity='warn') }}
select stage_name_normalized, count(*) as stages
from {{ ref('int_stages_typed') }}
where is_unmapped_stage_name
{{ group_by(1) }}
order by stages desc
