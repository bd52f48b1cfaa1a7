-- Row-level security: who may read and change what.
--
-- Claims come from the user's JWT (Supabase puts trusted, server-set claims under
-- app_metadata; user_metadata is writable by the user and never used here):
--   sub                       -> auth.uid(), the user
--   app_metadata.org_id       -> the user's recruiting organization
--   app_metadata.itrack_role  -> 'recruiter' or 'lead'
--
-- | role                         | candidates            | processes, stages                          | status history |
-- |------------------------------|-----------------------|--------------------------------------------|----------------|
-- | anon                         | nothing               | nothing                                    | nothing        |
-- | authenticated, recruiter     | org: read, add, edit  | org: read; add/edit those assigned to them | org: read      |
-- | authenticated, lead          | org: all              | org: all                                   | org: read      |
-- | service_role (server key)    | all                   | all                                        | read           |
-- | itrack_extract (nightly)     | read all              | read all                                   | read all       |
--
-- Nobody updates or deletes history (no grant, and a trigger refuses even the owner).
-- Helpers are called as `(select ...)` so they are evaluated once per statement.

do $$
begin
    create role itrack_extract nologin;
exception when duplicate_object or unique_violation then
    null;
end
$$;

-- Claim helpers (schema itrack is not exposed by the API). Each is one SQL expression without
-- a SET clause, so the planner inlines it into the statement that calls it (a policy, a
-- column default): no function call, no plan of its own. A SQL function with `set
-- search_path` is never inlined and is planned again at every statement that calls it (about
-- 0.1 ms each, several per statement). Instead of the SET clause every name in these bodies is
-- schema-qualified, operators included, so no search_path can redirect them.
create or replace function itrack.org_id() returns uuid
language sql stable
as $$
    select nullif(
        auth.jwt() operator(pg_catalog.->) 'app_metadata' operator(pg_catalog.->>) 'org_id', ''
    )::pg_catalog.uuid
$$;

create or replace function itrack.app_role() returns text
language sql stable
as $$
    select auth.jwt() operator(pg_catalog.->) 'app_metadata' operator(pg_catalog.->>) 'itrack_role'
$$;

-- Whether the acting user may change a process assigned to `recruiter` (the policies check
-- the organization themselves): a lead, or the recruiter it is assigned to. Inlined as well.
create or replace function itrack.may_change(recruiter uuid) returns boolean
language sql stable
as $$
    select coalesce(
        itrack.app_role() operator(pg_catalog.=) 'lead'
        or (
            itrack.app_role() operator(pg_catalog.=) 'recruiter'
            and recruiter operator(pg_catalog.=) auth.uid()
        ),
        false
    )
$$;

-- The same for a row of a process (a stage, a correction): may the user change its process?
-- It reads the process (as the caller: row-level security applies), so it cannot be inlined;
-- in PL/pgSQL its query is planned once per connection, not at every statement. No SET clause
-- either (it would cost a configuration change at every call, per row): every name is
-- schema-qualified, as in the helpers above.
create or replace function itrack.may_change_process(process uuid) returns boolean
language plpgsql stable
as $$
begin
    return itrack.may_change((
        select p.recruiter_id from public.interview_processes as p
        where p.id operator(pg_catalog.=) process
    ));
end;
$$;

-- Whether the acting role owns `tbl`: the logs are appended by their triggers only, which run
-- as the table's owner (FORCE subjects the owner to the policies too). Called as `(select
-- ...)`: once per statement.
create or replace function itrack.acting_as_owner(tbl regclass) returns boolean
language sql stable
set search_path = ''
as $$
    select pg_catalog.pg_has_role(current_user, c.relowner, 'MEMBER')
    from pg_catalog.pg_class as c
    where c.oid = tbl
$$;

-- A policy letting `role` do `command` (select, insert or all) on every row of a table: the
-- server's and the extract's policies, named <role>_<command>_<table>.
create or replace function itrack.allow_all(tbl text, role text, command text) returns void
language plpgsql
set search_path = ''
as $$
declare
    name text := format('%s_%s_%s', role, command, tbl);
    rule text := case command
        when 'all' then 'using (true) with check (true)'
        when 'insert' then 'with check (true)'
        else 'using (true)'
    end;
begin
    -- every row, so only for the server's and the extract's roles, never for a user's
    if role not in ('service_role', 'itrack_extract') then
        raise exception 'itrack.allow_all is for service_role and itrack_extract, not %', role;
    end if;
    execute format('drop policy if exists %I on public.%I', name, tbl);
    execute format('create policy %I on public.%I for %s to %I %s', name, tbl, command, role, rule);
end;
$$;

-- Row-level security enabled and forced on a table, and its rows readable by the users of
-- their organization (policy <table>_select_own_org).
create or replace function itrack.scope_to_org(tbl text) returns void
language plpgsql
set search_path = ''
as $$
declare
    name text := tbl || '_select_own_org';
begin
    execute format('alter table public.%I enable row level security', tbl);
    execute format('alter table public.%I force row level security', tbl);
    execute format('drop policy if exists %I on public.%I', name, tbl);
    execute format(
        'create policy %I on public.%I for select to authenticated'
        ' using (organization_id = (select itrack.org_id()))',
        name, tbl
    );
end;
$$;

revoke all on function itrack.scope_to_org(text) from public;
revoke all on function itrack.allow_all(text, text, text) from public;
revoke all on function itrack.org_id() from public;
revoke all on function itrack.app_role() from public;
revoke all on function itrack.may_change(uuid) from public;
revoke all on function itrack.may_change_process(uuid) from public;
grant usage on schema itrack to authenticated, service_role, itrack_extract;
grant execute on function itrack.org_id(), itrack.app_role(), itrack.may_change(uuid),
    itrack.may_change_process(uuid) to authenticated;

-- Privileges: what each role may attempt at all; the policies below then pick the rows.
revoke all on public.candidates, public.interview_processes, public.interview_stages,
    public.interview_status_history from anon, authenticated, service_role, itrack_extract;
grant select, insert, update, delete
    on public.candidates, public.interview_processes, public.interview_stages
    to authenticated, service_role;
grant select on public.interview_status_history to authenticated, service_role;
grant select on public.candidates, public.interview_processes, public.interview_stages,
    public.interview_status_history to itrack_extract;

-- Every table: row-level security on and forced; a user reads their organization's rows.
select itrack.scope_to_org(t)
from unnest(array[
    'candidates', 'interview_processes', 'interview_stages', 'interview_status_history'
]) as t;

-- candidates --------------------------------------------------------------------------------
drop policy if exists candidates_insert_own_org on public.candidates;
create policy candidates_insert_own_org on public.candidates
    for insert to authenticated
    with check (
        organization_id = (select itrack.org_id())
        and (select itrack.app_role()) in ('recruiter', 'lead')
    );

drop policy if exists candidates_update_own_org on public.candidates;
create policy candidates_update_own_org on public.candidates
    for update to authenticated
    using (
        organization_id = (select itrack.org_id())
        and (select itrack.app_role()) in ('recruiter', 'lead')
    )
    with check (organization_id = (select itrack.org_id()));

drop policy if exists candidates_delete_lead on public.candidates;
create policy candidates_delete_lead on public.candidates
    for delete to authenticated
    using (organization_id = (select itrack.org_id()) and (select itrack.app_role()) = 'lead');

-- interview_processes -----------------------------------------------------------------------
drop policy if exists processes_insert_assigned_or_lead on public.interview_processes;
create policy processes_insert_assigned_or_lead on public.interview_processes
    for insert to authenticated
    with check (organization_id = (select itrack.org_id()) and itrack.may_change(recruiter_id));

drop policy if exists processes_update_assigned_or_lead on public.interview_processes;
create policy processes_update_assigned_or_lead on public.interview_processes
    for update to authenticated
    using (organization_id = (select itrack.org_id()) and itrack.may_change(recruiter_id))
    with check (organization_id = (select itrack.org_id()) and itrack.may_change(recruiter_id));

drop policy if exists processes_delete_lead on public.interview_processes;
create policy processes_delete_lead on public.interview_processes
    for delete to authenticated
    using (organization_id = (select itrack.org_id()) and (select itrack.app_role()) = 'lead');

-- interview_stages: a recruiter writes the stages of the processes assigned to them ----------
drop policy if exists stages_insert_assigned_or_lead on public.interview_stages;
create policy stages_insert_assigned_or_lead on public.interview_stages
    for insert to authenticated
    with check (
        organization_id = (select itrack.org_id())
        and itrack.may_change_process(interview_process_id)
    );

drop policy if exists stages_update_assigned_or_lead on public.interview_stages;
create policy stages_update_assigned_or_lead on public.interview_stages
    for update to authenticated
    using (
        organization_id = (select itrack.org_id())
        and itrack.may_change_process(interview_process_id)
    )
    with check (
        organization_id = (select itrack.org_id())
        and itrack.may_change_process(interview_process_id)
    );

drop policy if exists stages_delete_lead on public.interview_stages;
create policy stages_delete_lead on public.interview_stages
    for delete to authenticated
    using (organization_id = (select itrack.org_id()) and (select itrack.app_role()) = 'lead');

-- interview_status_history: read within the organization; written only by the trigger -------
-- The trigger function runs as the table's owner, which FORCE subjects to policies too: the
-- owner (and only the owner: no other role holds INSERT) may append.
drop policy if exists history_insert_by_owner on public.interview_status_history;
create policy history_insert_by_owner on public.interview_status_history
    for insert
    with check ((select itrack.acting_as_owner('public.interview_status_history')));

-- service_role (Supabase's server key; bypasses RLS on Supabase, explicit here too) and
-- itrack_extract (the nightly extract reads everything, writes nothing): every row --------
select itrack.allow_all(t, 'service_role', 'all')
from unnest(array['candidates', 'interview_processes', 'interview_stages']) as t;
select itrack.allow_all('interview_status_history', 'service_role', 'select');
select itrack.allow_all(t, 'itrack_extract', 'select')
from unnest(array[
    'candidates', 'interview_processes', 'interview_stages', 'interview_status_history'
]) as t;
