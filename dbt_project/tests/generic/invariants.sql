{#
  Every invariant of one model in one test: one query, one dbt node (a node costs dbt about
  20-40 ms whatever its SQL, and the build had 113 of them, one per column check). Each
  argument is one kind of check, with the meaning of dbt's test of the same name:
    unique: [col, ...]                      no value twice (nulls ignored)
    unique_combination: [[col, col], ...]   no combination twice
    not_null: [col, ...]
    accepted_values: {col: [v, ...]}        strings quoted, numbers not; nulls pass
    relationships: {col: {to: ref(...), field: f}}   every non-null value exists there
    between_zero_and_one: [col, ...]        nulls pass
    not_negative: [col, ...]                nulls pass
  A failing row names its check and the failing value (`failed_check`, `failing_value`); the
  build lists them (itrack/dbt_runner.py). Severity is the test's: warn-level checks go in a
  second `invariants` test configured `severity: warn`.
#}
{% test invariants(model, unique=[], unique_combination=[], not_null=[], accepted_values={}, relationships={}, between_zero_and_one=[], not_negative=[]) %}
{%- set text = dbt.type_string() %}
select failed_check, failing_value
from (
    select cast(null as {{ text }}) as failed_check, cast(null as {{ text }}) as failing_value
    where 1 = 0
{%- for column in unique %}
    union all
    select 'unique({{ column }})', cast({{ column }} as {{ text }})
    from {{ model }}
    where {{ column }} is not null
    group by {{ column }}
    having count(*) > 1
{%- endfor %}
{%- for columns in unique_combination %}
    union all
    select 'unique_combination({{ columns | join(", ") }})', cast(null as {{ text }})
    from {{ model }}
    group by {{ columns | join(", ") }}
    having count(*) > 1
{%- endfor %}
{%- for column in not_null %}
    union all
    select 'not_null({{ column }})', cast(null as {{ text }})
    from {{ model }}
    where {{ column }} is null
{%- endfor %}
{%- for column, values in accepted_values.items() %}
    union all
    select distinct 'accepted_values({{ column }})', cast({{ column }} as {{ text }})
    from {{ model }}
    where {{ column }} not in (
        {%- for value in values -%}
        {{ "'" ~ (value | replace("'", "''")) ~ "'" if value is string else value }}
        {%- if not loop.last %}, {% endif %}
        {%- endfor -%}
    )
{%- endfor %}
{%- for column, parent in relationships.items() %}
    union all
    select 'relationships({{ column }})', cast(child.{{ column }} as {{ text }})
    from {{ model }} as child
    where child.{{ column }} is not null
        and not exists (
            select 1 from {{ parent.to }} as parent
            where parent.{{ parent.field }} = child.{{ column }}
        )
{%- endfor %}
{%- for column in between_zero_and_one %}
    union all
    select 'between_zero_and_one({{ column }})', cast({{ column }} as {{ text }})
    from {{ model }}
    where {{ column }} < 0 or {{ column }} > 1
{%- endfor %}
{%- for column in not_negative %}
    union all
    select 'not_negative({{ column }})', cast({{ column }} as {{ text }})
    from {{ model }}
    where {{ column }} < 0
{%- endfor %}
) as violations
{% endtest %}
