-- Corrections: the audit of amended stage outcomes and reopened processes (what changed, from
-- what to what, why, by whom), written by the service in the same transaction as the change.
-- Like the status history: read within the organization, appended by whoever may change the
-- process, never updated or deleted.

create table if not exists public.corrections (
    id bigint generated always as identity primary key,
    organization_id uuid not null,
    interview_process_id uuid not null,
    record_kind text not null check (record_kind in ('process', 'stage')),
    record_id uuid not null,
    field text not null check (char_length(field) between 1 and 100),
    old_value text,
    new_value text,
    reason text not null check (btrim(reason) <> ''),
    changed_by text not null check (btrim(changed_by) <> ''),
    changed_by_user uuid default auth.uid(),
    run_id text,
    recorded_at timestamptz not null default now()
);

create index if not exists corrections_organization_id_idx
    on public.corrections (organization_id);
create index if not exists corrections_process_idx
    on public.corrections (interview_process_id);
create index if not exists corrections_recorded_at_idx
    on public.corrections (recorded_at);

-- Append-only (update, delete, truncate refused even for the owner): the triggers are made
-- with those of the other logs, in 20261125160000_calls_and_deletions.sql.

revoke all on public.corrections from anon, authenticated, service_role, itrack_extract;
grant select, insert on public.corrections to authenticated, service_role;
grant select on public.corrections to itrack_extract;

select itrack.scope_to_org('corrections');

-- Appended by whoever may change the process: a lead of its organization, or its recruiter.
drop policy if exists corrections_insert_assigned_or_lead on public.corrections;
create policy corrections_insert_assigned_or_lead on public.corrections
    for insert to authenticated
    with check (
        organization_id = (select itrack.org_id())
        and itrack.may_change_process(interview_process_id)
    );

select itrack.allow_all('corrections', 'service_role', 'select');
select itrack.allow_all('corrections', 'service_role', 'insert');
select itrack.allow_all('corrections', 'itrack_extract', 'select');
