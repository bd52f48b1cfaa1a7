-- Two append-only logs the embedded store has its own way:
-- * service_calls: one row per completed write call of the itrack service (on DuckDB the call
--   is a row of `ingest_runs`): which call, its run id (also on the rows and history it wrote),
--   when, for which user and organization. A refused call leaves none (same transaction).
-- * deleted_rows: every candidate, process and stage deleted (by anyone; a process's stages
--   too, through the cascade), written by triggers, so the nightly extract can delete them from
--   the raw store. Status history and corrections are never deleted, so they need no entry.

create table if not exists public.service_calls (
    id bigint generated always as identity primary key,
    run_id text not null unique,
    command text not null check (char_length(command) between 1 and 100),
    organization_id uuid default itrack.org_id(),
    user_id uuid default auth.uid(),
    started_at timestamptz not null,
    finished_at timestamptz not null default clock_timestamp()
);

create index if not exists service_calls_organization_id_idx
    on public.service_calls (organization_id);

create table if not exists public.deleted_rows (
    id bigint generated always as identity primary key,
    table_name text not null
        check (table_name in ('candidates', 'interview_processes', 'interview_stages')),
    record_id text not null,
    organization_id uuid not null,
    deleted_by uuid,
    deleted_at timestamptz not null default clock_timestamp()
);

create index if not exists deleted_rows_deleted_at_idx on public.deleted_rows (deleted_at);

create or replace function itrack.record_deletion() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
    insert into public.deleted_rows (table_name, record_id, organization_id, deleted_by)
    values (tg_table_name, old.id::text, old.organization_id, auth.uid());
    return null;
end;
$$;

revoke all on function itrack.record_deletion() from public;
grant execute on function itrack.org_id() to service_role;

-- Per table, the same triggers: deletions logged on the three tables, and the logs made
-- append-only as the status history is (a trigger refuses even the owner).
select itrack.replace_trigger(
    t, 'record_deletion',
    'after delete on public.%2$I for each row execute function itrack.record_deletion()'
)
from unnest(array['candidates', 'interview_processes', 'interview_stages']) as t;

select itrack.make_append_only(t)
from unnest(array['corrections', 'service_calls', 'deleted_rows']) as t;

revoke all on public.service_calls, public.deleted_rows
    from anon, authenticated, service_role, itrack_extract;
grant select, insert on public.service_calls to authenticated, service_role;
grant select on public.deleted_rows to service_role;
grant select on public.service_calls, public.deleted_rows to itrack_extract;

select itrack.scope_to_org('service_calls');  -- a user reads their organization's calls
alter table public.deleted_rows enable row level security;
alter table public.deleted_rows force row level security;

-- A user logs their own calls only.
drop policy if exists calls_insert_own on public.service_calls;
create policy calls_insert_own on public.service_calls
    for insert to authenticated
    with check (
        organization_id = (select itrack.org_id())
        and user_id = (select auth.uid())
        and (select itrack.app_role()) in ('recruiter', 'lead')
    );

-- Deletions: written only by the trigger (as the owner), read by the server and the extract.
drop policy if exists deleted_rows_insert_by_owner on public.deleted_rows;
create policy deleted_rows_insert_by_owner on public.deleted_rows
    for insert
    with check ((select itrack.acting_as_owner('public.deleted_rows')));

select itrack.allow_all('service_calls', 'service_role', 'select');
select itrack.allow_all('service_calls', 'service_role', 'insert');
select itrack.allow_all('deleted_rows', 'service_role', 'select');
select itrack.allow_all(t, 'itrack_extract', 'select')
from unnest(array['service_calls', 'deleted_rows']) as t;
