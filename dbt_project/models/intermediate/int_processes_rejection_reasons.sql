-- One row per rejected process (status rejected_by_company) and reason. A process's reasons are
-- the phrases of its final_outcome; when that yields none, the phrases of the notes of its
-- failed stages; with neither, `unspecified`. A phrase is text between `;`, line breaks and a
-- `.` followed by whitespace or the end ("Node.js" and "2.5" stay whole), normalised like names
-- (whitespace collapsed, trimmed, lower case); empty phrases are dropped. Each reason counts
-- once per process.
with

-- the processes' table, not int_processes_enriched: that view inlines the whole enrichment
-- (status history windows, stage reach), which fct_interview_processes has computed already
processes as (
    select * from {{ ref('fct_interview_processes') }}
),

stages as (
    select * from {{ ref('int_stages_typed') }}
),

rejected as (
    select interview_process_id, company_key, feeder_key, final_outcome
    from processes
    where status = 'rejected_by_company'
),

outcome_reasons as (
    select distinct interview_process_id, reason, 'final_outcome' as reason_source
    from (
        select rejected.interview_process_id, {{ normalize_name('phrases.phrase') }} as reason
        from rejected
        cross join {{ split_phrases('rejected.final_outcome') }}
        where rejected.final_outcome is not null
    ) as split
    where reason <> ''
),

note_reasons as (
    select distinct interview_process_id, reason, 'failed_stage_notes' as reason_source
    from (
        select stages.interview_process_id, {{ normalize_name('phrases.phrase') }} as reason
        from stages
        inner join rejected on stages.interview_process_id = rejected.interview_process_id
        cross join {{ split_phrases('stages.feedback_notes') }}
        -- only the processes without outcome reasons: their notes are split, no others
        where stages.outcome = 'failed' and stages.feedback_notes is not null
            and stages.interview_process_id not in (
                select interview_process_id from outcome_reasons
            )
    ) as split
    where reason <> ''
),

reasons as (
    select * from outcome_reasons
    union all
    select * from note_reasons
),

final as (
    select
        rejected.interview_process_id,
        rejected.company_key,
        rejected.feeder_key,
        coalesce(reasons.reason, 'unspecified') as reason,
        coalesce(reasons.reason_source, 'none') as reason_source
    from rejected
    left join reasons on rejected.interview_process_id = reasons.interview_process_id
)

select * from final
