-- A correction appended by a Supabase client is its author's, about a record of the process it
-- is filed under, at the time it is appended. The policy of 20261125150000 checked only that the
-- client may change the process: a recruiter could file a correction in another user's name
-- (changed_by_user), about another organization's stage (record_id), dated at will (recorded_at).
-- The server (service_role) keeps writing them as before: its changes carry their own time.

drop policy if exists corrections_insert_assigned_or_lead on public.corrections;
create policy corrections_insert_assigned_or_lead on public.corrections
    for insert to authenticated
    with check (
        organization_id = (select itrack.org_id())
        and itrack.may_change_process(interview_process_id)
        and changed_by_user = (select auth.uid())
        and (
            (record_kind = 'process' and record_id = interview_process_id)
            or (record_kind = 'stage' and exists (
                select 1 from public.interview_stages s
                where s.id = corrections.record_id
                  and s.interview_process_id = corrections.interview_process_id))
        )
    );

create or replace function itrack.stamp_client_correction() returns trigger
    language plpgsql
    set search_path = ''
as $$
begin
    if current_user = 'authenticated' then  -- a client's: dated when it is appended
        new.recorded_at := now();
    end if;
    return new;
end;
$$;

drop trigger if exists corrections_stamp_client on public.corrections;
create trigger corrections_stamp_client
    before insert on public.corrections
    for each row execute function itrack.stamp_client_correction();
