-- One row per rejected process (status rejected_by_company) and reason. A process's reasons are
-- the phrases of its final_outcome; when that yields none, the phrases of the notes of its
-- failed stages; with neither, `unspecified`. A phrase is text between `;`, line breaks and a
-- `.` followed by whitespace or the end ("Node.js" and "2.5" stay whole). Reasons are grouped
-- by the key stage names have (normalize_name with separators folded: whitespace collapsed,
-- `_` and `-` as spaces, lower case, NFC), since auto-closed processes name the failed stage
-- ("Failed phone_screen", "Failed Phone Screen"), and shown by the key's most frequent
-- spelling (whitespace collapsed, case kept; each spelling counted once per process that uses
-- it, ties to the smallest). Phrases with an empty key are dropped. Each reason counts once per
-- process.
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

-- every phrase of a rejected process's final_outcome: its spelling and key
outcome_phrases as (
    select distinct interview_process_id, reason_spelling, reason_key, 'final_outcome' as reason_source
    from (
        select
            rejected.interview_process_id,
            {{ clean_text('phrases.phrase') }} as reason_spelling,
            {{ normalize_name('phrases.phrase', fold_separators=true) }} as reason_key
        from rejected
        cross join {{ split_phrases('rejected.final_outcome') }}
        where rejected.final_outcome is not null
    ) as split
    where reason_key <> ''
),

note_phrases as (
    select distinct interview_process_id, reason_spelling, reason_key,
        'failed_stage_notes' as reason_source
    from (
        select
            stages.interview_process_id,
            {{ clean_text('phrases.phrase') }} as reason_spelling,
            {{ normalize_name('phrases.phrase', fold_separators=true) }} as reason_key
        from stages
        inner join rejected on stages.interview_process_id = rejected.interview_process_id
        cross join {{ split_phrases('stages.feedback_notes') }}
        -- only the processes without outcome reasons: their notes are split, no others
        where stages.outcome = 'failed' and stages.feedback_notes is not null
            and stages.interview_process_id not in (
                select interview_process_id from outcome_phrases
            )
    ) as split
    where reason_key <> ''
),

-- one row per rejected process and spelling of each of its reasons (`unspecified` without any)
spelled as (
    select
        rejected.interview_process_id,
        rejected.company_key,
        rejected.feeder_key,
        coalesce(phrases.reason_spelling, 'unspecified') as reason_spelling,
        coalesce(phrases.reason_key, 'unspecified') as reason_key,
        coalesce(phrases.reason_source, 'none') as reason_source
    from rejected
    left join (
        select * from outcome_phrases
        union all
        select * from note_phrases
    ) as phrases on rejected.interview_process_id = phrases.interview_process_id
),

-- one display spelling per reason key: the most frequent, ties to the smallest
reason_names as (
    {{ most_frequent_spelling('spelled', 'reason_key', 'reason_spelling', 'reason') }}
),

final as (
    select distinct
        spelled.interview_process_id,
        spelled.company_key,
        spelled.feeder_key,
        reason_names.reason,
        spelled.reason_key,
        spelled.reason_source
    from spelled
    inner join reason_names on spelled.reason_key = reason_names.reason_key
)

select * from final
