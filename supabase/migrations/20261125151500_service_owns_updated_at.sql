-- The itrack service keeps `updated_at` itself (strictly forward on every change to a process
-- or its stages, the same rule on every store): in its transactions (itrack.source set) the
-- triggers take its values as written. For every other writer (SQL, Supabase clients) the
-- database keeps them as before: moved to now() when not set, never backwards, and a stage
-- change touches its process. Status-history rows are stamped with the clock at the moment
-- they are written (clock_timestamp(), not the transaction's start).

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

alter table public.interview_status_history alter column recorded_at set default clock_timestamp();

revoke all on function itrack.set_updated_at() from public;
revoke all on function itrack.touch_process_of_stage() from public;
revoke all on function itrack.record_status_change() from public;
