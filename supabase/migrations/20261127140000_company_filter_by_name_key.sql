-- The process lists filter a company by its name key (ingest/store/common.py `name_key_sql`): case
-- and runs of whitespace do not count, as `itrack interview create` and the analytics tell
-- spellings apart ("Stripe", " stripe", "STRIPE" are one company). The index of 20261125140000
-- served only the exact spelling; this one is on the expression the filter compares (the two
-- must be spelled alike for the planner to use it), with the status as before.

drop index if exists public.interview_processes_company_status_idx;
create index if not exists interview_processes_company_key_status_idx
    on public.interview_processes (lower(trim(regexp_replace(company_name, '\s+', ' ', 'g'))), status);
