-- Which user (JWT `sub`) a process is assigned to, for the HTTP API's rights on the embedded
-- store: a recruiter changes only the processes assigned to them (PostgreSQL keeps this as
-- interview_processes.recruiter_id under row-level security). Written by the API with the
-- process, in the same transaction.
create table if not exists api_process_assignments (
    interview_process_id uuid primary key,
    recruiter_id varchar not null,
    assigned_at timestamp not null
);
