-- The raw store of the embedded DuckDB store (as the seed created it at every connect): the
-- raw tables ingest and the service write, the status history, the audit of runs, the
-- quarantine and the feedback step's state. `if not exists` so that a raw store created before
-- migrations were versioned takes this baseline as already applied.
create table if not exists candidates (
    id varchar primary key,
    full_name varchar not null,
    feeder_source varchar,
    current_company varchar,
    linkedin_url varchar,
    created_at timestamp not null,
    updated_at timestamp not null,
    _run_id varchar not null,
    _loaded_at timestamp not null
);
create table if not exists interview_processes (
    id uuid primary key,
    candidate_id varchar not null,
    company_name varchar not null,
    role_title varchar not null,
    status varchar not null,
    feeder_source varchar,
    recruiter_name varchar,
    final_outcome varchar,
    offer_details json,
    created_at timestamp not null,
    updated_at timestamp not null,
    _run_id varchar not null,
    _loaded_at timestamp not null
);
create table if not exists interview_stages (
    id uuid primary key,
    interview_process_id uuid not null,
    stage_name varchar not null,
    stage_order integer not null,
    scheduled_date timestamp,
    completed_date timestamp,
    outcome varchar not null,
    overall_rating integer,
    technical_rating integer,
    culture_fit_rating integer,
    communication_rating integer,
    feedback_notes varchar,
    interviewer_names varchar[] not null,
    next_steps varchar,
    created_at timestamp not null,
    updated_at timestamp not null,
    _run_id varchar not null,
    _loaded_at timestamp not null
);
create table if not exists interview_status_history (
    interview_process_id uuid not null,
    from_status varchar,
    to_status varchar not null,
    changed_at timestamp not null,
    run_id varchar not null,
    source varchar not null,
    recorded_at timestamp not null
);
create table if not exists ingest_runs (
    run_id varchar primary key,
    command varchar not null,
    status varchar not null,
    started_at timestamp not null,
    finished_at timestamp,
    rows_read bigint not null default 0,
    accepted bigint not null default 0,
    rejected bigint not null default 0,
    stale bigint not null default 0,
    unchanged bigint not null default 0
);
create table if not exists ingest_files (
    run_id varchar not null,
    file_path varchar not null,
    kind varchar not null,
    format varchar not null,
    sha256 varchar not null,
    skipped boolean not null,
    rows_read bigint not null,
    inserted bigint not null,
    updated bigint not null,
    unchanged bigint not null,
    stale bigint not null,
    rejected bigint not null
);
create table if not exists quarantine (
    run_id varchar not null,
    file_path varchar,
    line_number bigint,
    kind varchar not null,
    record_id varchar,
    raw_payload varchar,
    error_code varchar not null,
    field varchar,
    error_message varchar not null,
    retryable boolean not null,
    resolved_run_id varchar,
    quarantined_at timestamp not null
);
create table if not exists feedback_runs (
    run_id varchar not null,
    feeder_source varchar not null,
    metrics json not null,
    written_at timestamp not null
);
create table if not exists feedback_state (
    key varchar primary key,
    value varchar not null,
    updated_at timestamp not null
);
