-- The name key of the process lists (ingest/store/common.py `name_key_sql`) folds runs of ASCII
-- whitespace, spelled out as [ \t\n\v\f\r]: the `\s` of 20261127140000 meant the locale's spaces
-- here (U+3000, U+2003, ...) but ASCII ones in DuckDB, so a company filter matched a name on
-- one store and not on the other. The index follows the expression (spelled alike, or the
-- planner cannot use it).

drop index if exists public.interview_processes_company_key_status_idx;
create index if not exists interview_processes_company_key_status_idx
    on public.interview_processes (lower(trim(regexp_replace(company_name, '[ \t\n\v\f\r]+', ' ', 'g'))), status);
