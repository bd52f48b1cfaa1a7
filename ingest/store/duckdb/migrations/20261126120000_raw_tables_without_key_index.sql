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
-- Each table is copied (the same columns and types, in order), given back its NOT NULL
-- constraints, and takes the old one's place.

create table candidates__rebuilt as select * from candidates;
alter table candidates__rebuilt alter column id set not null;
alter table candidates__rebuilt alter column full_name set not null;
alter table candidates__rebuilt alter column created_at set not null;
alter table candidates__rebuilt alter column updated_at set not null;
alter table candidates__rebuilt alter column _run_id set not null;
alter table candidates__rebuilt alter column _loaded_at set not null;
drop table candidates;
alter table candidates__rebuilt rename to candidates;

create table interview_processes__rebuilt as select * from interview_processes;
alter table interview_processes__rebuilt alter column id set not null;
alter table interview_processes__rebuilt alter column candidate_id set not null;
alter table interview_processes__rebuilt alter column company_name set not null;
alter table interview_processes__rebuilt alter column role_title set not null;
alter table interview_processes__rebuilt alter column status set not null;
alter table interview_processes__rebuilt alter column created_at set not null;
alter table interview_processes__rebuilt alter column updated_at set not null;
alter table interview_processes__rebuilt alter column _run_id set not null;
alter table interview_processes__rebuilt alter column _loaded_at set not null;
drop table interview_processes;
alter table interview_processes__rebuilt rename to interview_processes;

create table interview_stages__rebuilt as select * from interview_stages;
alter table interview_stages__rebuilt alter column id set not null;
alter table interview_stages__rebuilt alter column interview_process_id set not null;
alter table interview_stages__rebuilt alter column stage_name set not null;
alter table interview_stages__rebuilt alter column stage_order set not null;
alter table interview_stages__rebuilt alter column outcome set not null;
alter table interview_stages__rebuilt alter column interviewer_names set not null;
alter table interview_stages__rebuilt alter column created_at set not null;
alter table interview_stages__rebuilt alter column updated_at set not null;
alter table interview_stages__rebuilt alter column _run_id set not null;
alter table interview_stages__rebuilt alter column _loaded_at set not null;
drop table interview_stages;
alter table interview_stages__rebuilt rename to interview_stages;
