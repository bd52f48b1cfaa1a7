{#
  One display name per normalised key: the spelling seen most often, ties to the smallest.
  Used wherever names are grouped case- and space-insensitively (companies, feeders,
  interviewers, stage names), so every mart shows a key the same way.
#}
{% macro most_frequent_spelling(from_relation, key, spelling, display) %}
    select {{ key }}, {{ spelling }} as {{ display }}
    from (
        select
            {{ key }},
            {{ spelling }},
            row_number() over (
                partition by {{ key }} order by count(*) desc, {{ spelling }}
            ) as spelling_rank
        from {{ from_relation }}
        group by {{ key }}, {{ spelling }}
    ) as ranked
    where spelling_rank = 1
{% endmacro %}
