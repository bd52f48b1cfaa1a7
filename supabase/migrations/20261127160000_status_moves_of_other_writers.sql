-- A status change by any writer other than the itrack service (a Supabase client, SQL) follows
-- the state machine as ingest applies it to a nightly snapshot (ingest/load.py,
-- `invalid_transition`): the new status is reachable from the stored one (a client may skip a
-- state, as an export may), so a terminal status is final. Without this a recruiter's client
-- could move a rejected process back to in_progress or an accepted offer to on_hold, which the
-- service refuses and the nightly extract would then quarantine.
--
-- The service (`itrack.source` set in its transactions, which PostgREST clients cannot set)
-- applies the stricter rule itself, one direct move at a time, and reopens a close on purpose
-- (a correction, recorded with its reason): it is not checked here.
--
-- The pairs are `ingest.contract.reachable` (from ingest.contract.TRANSITIONS) written out;
-- tests/test_pg_schema.py tries every pair of statuses and proves the two agree.

create or replace function itrack.check_status_move() returns trigger
language plpgsql
set search_path = ''
as $$
begin
    if (old.status || '>' || new.status) operator(pg_catalog.<>) all (array[
        'in_progress>on_hold', 'in_progress>offer_extended', 'in_progress>offer_accepted',
        'in_progress>offer_declined', 'in_progress>rejected_by_company',
        'in_progress>candidate_withdrew',
        'on_hold>in_progress', 'on_hold>offer_extended', 'on_hold>offer_accepted',
        'on_hold>offer_declined', 'on_hold>rejected_by_company', 'on_hold>candidate_withdrew',
        'offer_extended>offer_accepted', 'offer_extended>offer_declined',
        'offer_extended>rejected_by_company', 'offer_extended>candidate_withdrew'
    ]) then
        raise exception 'interview process %: status cannot go from % to %',
                new.id, old.status, new.status
            using errcode = 'check_violation',
                  hint = case when old.status in ('offer_accepted', 'offer_declined',
                                                  'rejected_by_company', 'candidate_withdrew')
                              then old.status || ' is final; a lead reopens a process with '
                                   '`itrack interview reopen` (a correction, with its reason)'
                              else 'offer_extended moves on only to offer_accepted, '
                                   'offer_declined, rejected_by_company or candidate_withdrew'
                         end;
    end if;
    return new;
end;
$$;

revoke all on function itrack.check_status_move() from public;

drop trigger if exists interview_processes_status_move on public.interview_processes;
create trigger interview_processes_status_move
    before update on public.interview_processes
    for each row
    when (old.status is distinct from new.status
          and coalesce(current_setting('itrack.source', true), '') = '')
    execute function itrack.check_status_move();
