-- A process inserted already past in_progress (a Supabase client or SQL importing processes, a
-- backfill) gets the status history ingest gives the same record from a file (ingest/load.py,
-- `_record_status_history`): NULL -> in_progress at created_at, then in_progress -> its status at
-- updated_at. The first version wrote one row, NULL -> status at created_at, so the marts took
-- a process inserted rejected as closed the day it was created (0 days to close) where the same
-- record loaded from a file closed at its updated_at: the nightly extract and an ingest of the
-- same records built different warehouses. Changes after the insert are unchanged: one row at
-- the new updated_at. Runs as the table owner (users hold no INSERT on the history); the
-- writer's run id and source come from the transaction settings itrack.run_id / itrack.source;
-- recorded_at is the clock at the moment the row is written.

create or replace function itrack.record_status_change() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
    first_status text := case when tg_op = 'INSERT' then 'in_progress' end;
begin
    if tg_op = 'INSERT' or old.status is distinct from new.status then
        insert into public.interview_status_history (
            organization_id, interview_process_id, from_status, to_status, changed_at,
            changed_by, run_id, source, recorded_at
        )
        select new.organization_id, new.id, moves.from_status, moves.to_status,
               moves.changed_at, auth.uid(),
               nullif(current_setting('itrack.run_id', true), ''),
               coalesce(nullif(current_setting('itrack.source', true), ''), 'postgres'),
               clock_timestamp()
        from (
            -- an insert: in_progress at created_at first
            select null::text as from_status, first_status as to_status,
                   new.created_at as changed_at, 1 as step
            where tg_op = 'INSERT'
            union all
            -- then the move to the row's status, at its updated_at (none for in_progress)
            select case when tg_op = 'INSERT' then first_status else old.status end,
                   new.status, new.updated_at, 2
            where new.status is distinct from coalesce(first_status, old.status)
        ) as moves
        order by moves.step;
    end if;
    return null;
end;
$$;

revoke all on function itrack.record_status_change() from public;
