-- The raw tables keep their ids unique without a primary-key index (issue #17). Ingest writes
-- a million rows in one run; the index made that insert and its commit cost between two and
-- three times what the rows alone cost (1M: 2.9-3.7 s against 1.1 s for the stages and
-- processes), and bought little: a lookup by id scans the column in about 4 ms at 1M rows
-- (2 ms with the index), and the stages of a process were always found by a scan.
-- One writer at a time holds the store (DuckDB's file lock), and each keeps ids unique: ingest
-- classifies every staged row against the table by id and inserts only ids it does not hold
-- (an update deletes its row and inserts the new one; tests/test_ingest.py
-- ::test_ids_stay_unique_without_a_key_index), the interview service creates rows with new
-- uuid4 ids and updates them in place.
-- Each table is rebuilt with the same columns, types and NOT NULL constraints, in order.

create table candidates__rebuilt (
    id varchar not null,
    full_name varchar not null,
    feeder_source varchar,
    current_company varchar,
    linkedin_url varchar,
    created_at timestamp not null,
    updated_at timestamp not null,
    _run_id varchar not null,
    _loaded_at timestamp not null
);
insert into candidates__rebuilt select * from candidates;
drop table candidates;
alter table candidates__rebuilt rename to candidates;

create table interview_processes__rebuilt (
    id uuid not null,
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
insert into interview_processes__rebuilt select * from interview_processes;
drop table interview_processes;
alter table interview_processes__rebuilt rename to interview_processes;

create table interview_stages__rebuilt (
    id uuid not null,
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
insert into interview_stages__rebuilt select * from interview_stages;
drop table interview_stages;
alter table interview_stages__rebuilt rename to interview_stages;
