-- Change stamps by the server's clock, for the nightly extract; and updated_at never backwards.
--
-- The extract selected changed rows by `updated_at` (corrections by `recorded_at`): business
-- times a writer sets. A process backfilled with `--at`, or any row inserted with a historical
-- created_at, was older than the last watermark and never extracted; one row dated 2062 moved
-- the watermark to 2062 and nothing of its table was extracted until then. `_changed_at` is
-- when the row was last written by the server's clock: set by a trigger on every insert and
-- update whatever the writer sends (no client can set it), and the extract's watermark and
-- selection use it. The leading underscore marks bookkeeping outside the record contract, as
-- the raw store's `_run_id` and `_loaded_at` do; it never leaves the database.
--
-- It is `clock_timestamp()`, the moment the row is written, not the transaction's start: a row
-- becomes visible when its transaction commits, so the extract's overlap must cover the time
-- from a write to its commit (README, "The nightly extract"), and the statement's clock keeps
-- that window as short as the writer's transaction allows.

-- No SET clause (a call of a function with one costs tens of microseconds, and this one runs
-- for every row written): the one name it uses is schema-qualified instead.
create or replace function itrack.stamp_change() returns trigger
language plpgsql
as $$
begin
    new._changed_at := pg_catalog.clock_timestamp();
    return new;
end;
$$;

revoke all on function itrack.stamp_change() from public;

-- Existing rows get the migration's clock (a volatile default fills each row as the table is
-- rewritten, firing no update trigger): every row is newer than any watermark an extract saved
-- before, so the next extract pulls everything once and merges what it had as unchanged,
-- including the rows the business-time watermark had skipped.
alter table public.candidates
    add column if not exists _changed_at timestamptz not null default clock_timestamp();
alter table public.interview_processes
    add column if not exists _changed_at timestamptz not null default clock_timestamp();
alter table public.interview_stages
    add column if not exists _changed_at timestamptz not null default clock_timestamp();
alter table public.corrections
    add column if not exists _changed_at timestamptz not null default clock_timestamp();

select itrack.replace_trigger(
    t, 'stamp_change',
    'before insert or update on public.%2$I for each row execute function itrack.stamp_change()'
)
from unnest(array['candidates', 'interview_processes', 'interview_stages']) as t;
-- Corrections are append-only (updates are refused): inserts only.
select itrack.replace_trigger(
    'corrections', 'stamp_change',
    'before insert on public.%2$I for each row execute function itrack.stamp_change()'
);

-- The extract's watermark index moves from updated_at to _changed_at (nothing else selects by
-- updated_at; each index is a cost on every write).
drop index if exists public.candidates_updated_at_idx;
drop index if exists public.interview_processes_updated_at_idx;
drop index if exists public.interview_stages_updated_at_idx;
drop index if exists public.corrections_recorded_at_idx;
create index if not exists candidates_changed_at_idx on public.candidates (_changed_at);
create index if not exists interview_processes_changed_at_idx
    on public.interview_processes (_changed_at);
create index if not exists interview_stages_changed_at_idx on public.interview_stages (_changed_at);
create index if not exists corrections_changed_at_idx on public.corrections (_changed_at);

-- updated_at never moves backwards, for every writer. The raw store keeps, per id, the row with
-- the latest updated_at (a row older than the one it holds is stale), so a change written with
-- an earlier updated_at (`update ... set status = 'on_hold', updated_at = '2025-03-01Z'` by a
-- Supabase client, which the WHEN clause of 20261125140100_triggers let through as written)
-- would be extracted and then never applied. It is refused, as the service refuses a backfill
-- older than the process's last change (`--at`), naming both times; unchanged (or null), it
-- still moves forward for writers other than the service, as before.
create or replace function itrack.set_updated_at() returns trigger
language plpgsql
set search_path = ''
as $$
begin
    if tg_op = 'INSERT' then
        new.updated_at := coalesce(new.updated_at, new.created_at, now());
    elsif new.updated_at < old.updated_at then
        raise exception 'updated_at may not move backwards: % is before the row''s last change (%)',
            new.updated_at, old.updated_at
            using errcode = 'check_violation',
                  hint = 'leave updated_at out (the database moves it), or backfill events in the order they happened';
    elsif new.updated_at is null
          or coalesce(current_setting('itrack.source', true), '') = '' then
        new.updated_at := greatest(now(), old.updated_at + interval '1 microsecond');
    end if;
    return new;
end;
$$;

-- The WHEN clause widened to the rows the function now has something to do for: the service's
-- writes, which move updated_at forward themselves, still cost no call.
select itrack.replace_trigger(
    t, 'keep_updated_at',
    'before update on public.%2$I for each row'
    ' when (new.updated_at is null or new.updated_at <= old.updated_at)'
    ' execute function itrack.set_updated_at()'
)
from unnest(array['candidates', 'interview_processes', 'interview_stages']) as t;
