-- Corrections: the audit of amended stage outcomes and reopened processes (what changed, from
-- what to what, why, by whom), written by the service with the change.
create table if not exists corrections (
    run_id varchar not null,
    record_kind varchar not null,
    record_id varchar not null,
    interview_process_id varchar not null,
    field varchar not null,
    old_value varchar,
    new_value varchar,
    reason varchar not null,
    changed_by varchar not null,
    recorded_at timestamp not null
);
