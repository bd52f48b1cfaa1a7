-- Triggers: updated_at moves forward on every change (a change to a stage also touches its
-- process), every status a process takes is appended to interview_status_history, and the
-- history is append-only. Helpers live in schema `itrack`, which the API does not expose.

create schema if not exists itrack;

-- updated_at: the itrack service keeps it itself (strictly forward on every change to a
-- process or its stages, the same rule on every store): in its transactions (itrack.source
-- set) the triggers take its values as written. For every other writer (SQL, Supabase
-- clients) the database keeps it: moved to now() when not set, never backwards.
create or replace function itrack.set_updated_at() returns trigger
language plpgsql
set search_path = ''
as $$
begin
    if tg_op = 'INSERT' then
        new.updated_at := coalesce(new.updated_at, new.created_at, now());
    elsif coalesce(current_setting('itrack.source', true), '') = ''
          and new.updated_at is not distinct from old.updated_at then
        new.updated_at := greatest(now(), old.updated_at + interval '1 microsecond');
    end if;
    return new;
end;
$$;

-- A stage written or deleted is a change to its process: move the process's updated_at
-- (the service touches the process itself, in the same transaction).
create or replace function itrack.touch_process_of_stage() returns trigger
language plpgsql
set search_path = ''
as $$
declare
    process_id uuid := case when tg_op = 'DELETE' then old.interview_process_id
                            else new.interview_process_id end;
begin
    if coalesce(current_setting('itrack.source', true), '') <> '' then
        return null;  -- the service touches the process itself, in the same transaction
    end if;
    update public.interview_processes
       set updated_at = greatest(now(), updated_at + interval '1 microsecond')
     where id = process_id;
    if tg_op = 'UPDATE' and old.interview_process_id <> new.interview_process_id then
        update public.interview_processes
           set updated_at = greatest(now(), updated_at + interval '1 microsecond')
         where id = old.interview_process_id;
    end if;
    return null;
end;
$$;

-- Status history: the first status at created_at, every change at the new updated_at. Runs
-- as the table owner (users hold no INSERT on the history); the writer's run id and source
-- come from the transaction settings itrack.run_id / itrack.source when the service sets them;
-- recorded_at is the clock at the moment the row is written (not the transaction's start).
create or replace function itrack.record_status_change() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
    if tg_op = 'INSERT' or old.status is distinct from new.status then
        insert into public.interview_status_history (
            organization_id, interview_process_id, from_status, to_status, changed_at,
            changed_by, run_id, source, recorded_at
        ) values (
            new.organization_id,
            new.id,
            case when tg_op = 'INSERT' then null else old.status end,
            new.status,
            case when tg_op = 'INSERT' then new.created_at else new.updated_at end,
            auth.uid(),
            nullif(current_setting('itrack.run_id', true), ''),
            coalesce(nullif(current_setting('itrack.source', true), ''), 'postgres'),
            clock_timestamp()
        );
    end if;
    return null;
end;
$$;

create or replace function itrack.forbid_history_change() returns trigger
language plpgsql
set search_path = ''
as $$
begin
    raise exception '% is append-only: % refused', tg_table_name, tg_op
        using errcode = 'insufficient_privilege';
end;
$$;

-- A trigger named <table>_<suffix> on public.<table>, replaced if it exists: `definition` is
-- what follows `create trigger <name>`, with %2$I standing for the table.
create or replace function itrack.replace_trigger(tbl text, suffix text, definition text)
returns void
language plpgsql
set search_path = ''
as $$
declare
    name text := tbl || '_' || suffix;
begin
    execute format('drop trigger if exists %I on public.%I', name, tbl);
    execute format('create trigger %1$I ' || definition, name, tbl);
end;
$$;

revoke all on function itrack.replace_trigger(text, text, text) from public;
revoke all on function itrack.set_updated_at() from public;
revoke all on function itrack.touch_process_of_stage() from public;
revoke all on function itrack.record_status_change() from public;
revoke all on function itrack.forbid_history_change() from public;

-- Each trigger's WHEN clause says when its function has something to do, so the rows it would
-- leave alone (every row the service writes: it sets updated_at itself and writes a process
-- whole, status included) cost no function call: a call of a PL/pgSQL function with a SET
-- clause is tens of microseconds, a WHEN test a few.
select itrack.replace_trigger(
    t, 'set_updated_at',
    'before insert on public.%2$I for each row'
    ' when (new.updated_at is null) execute function itrack.set_updated_at()'
), itrack.replace_trigger(
    t, 'keep_updated_at',
    'before update on public.%2$I for each row'
    ' when (new.updated_at is not distinct from old.updated_at)'
    ' execute function itrack.set_updated_at()'
)
from unnest(array['candidates', 'interview_processes', 'interview_stages']) as t;

drop trigger if exists interview_stages_touch_process on public.interview_stages;
create trigger interview_stages_touch_process
    after insert or update or delete on public.interview_stages
    for each row
    when (coalesce(current_setting('itrack.source', true), '') = '')
    execute function itrack.touch_process_of_stage();

drop trigger if exists interview_processes_status_history on public.interview_processes;
create trigger interview_processes_status_history
    after insert on public.interview_processes
    for each row execute function itrack.record_status_change();

drop trigger if exists interview_processes_status_change on public.interview_processes;
create trigger interview_processes_status_change
    after update of status on public.interview_processes
    for each row when (old.status is distinct from new.status)
    execute function itrack.record_status_change();

-- A log made append-only: updates, deletes and truncation refused by triggers (even for the
-- owner). The status history here; the later logs (corrections, calls, deletions) too.
create or replace function itrack.make_append_only(tbl text) returns void
language plpgsql
set search_path = ''
as $$
begin
    perform itrack.replace_trigger(
        tbl, 'append_only',
        'before update or delete on public.%2$I for each row'
        ' execute function itrack.forbid_history_change()'
    );
    perform itrack.replace_trigger(
        tbl, 'no_truncate',
        'before truncate on public.%2$I for each statement'
        ' execute function itrack.forbid_history_change()'
    );
end;
$$;

revoke all on function itrack.make_append_only(text) from public;

select itrack.make_append_only('interview_status_history');
