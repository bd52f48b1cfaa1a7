-- Interview tracking: the operational tables (plain SQL, PostgreSQL 15+; Supabase CLI layout).
--
-- Columns follow the record contract (ingest/contract.py: Candidate, InterviewProcess,
-- InterviewStage); the CHECK constraints restate its enums and ranges, and
-- tests/test_pg_schema.py proves the two agree. Every table carries `organization_id`, the
-- recruiting organization the row belongs to: row-level security (next migration) scopes
-- every user to their organization's rows. Composite foreign keys keep a process and its
-- stages in their candidate's organization.

create table if not exists public.candidates (
    id text primary key
        check (id ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]*$' and char_length(id) <= 64),
    organization_id uuid not null,
    full_name text not null check (char_length(full_name) between 1 and 500 and btrim(full_name) <> ''),
    feeder_source text check (char_length(feeder_source) between 1 and 500 and btrim(feeder_source) <> ''),
    current_company text check (char_length(current_company) between 1 and 500),
    linkedin_url text check (char_length(linkedin_url) between 1 and 500),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null,  -- defaults to created_at (trigger)
    constraint candidates_updated_after_created check (updated_at >= created_at),
    constraint candidates_id_organization_key unique (id, organization_id)
);

create table if not exists public.interview_processes (
    id uuid primary key default gen_random_uuid(),
    organization_id uuid not null,
    candidate_id text not null,
    company_name text not null check (char_length(company_name) between 1 and 500 and btrim(company_name) <> ''),
    role_title text not null check (char_length(role_title) between 1 and 500 and btrim(role_title) <> ''),
    status text not null default 'in_progress',
    feeder_source text check (char_length(feeder_source) between 1 and 500 and btrim(feeder_source) <> ''),
    recruiter_name text check (char_length(recruiter_name) between 1 and 500 and btrim(recruiter_name) <> ''),
    -- the user (auth.users id) the process is assigned to: that recruiter may change it
    recruiter_id uuid,
    final_outcome text check (char_length(final_outcome) >= 1),
    offer_details jsonb,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null,  -- defaults to created_at (trigger)
    constraint interview_processes_status_check check (status in (
        'in_progress', 'on_hold', 'offer_extended', 'offer_accepted', 'offer_declined',
        'rejected_by_company', 'candidate_withdrew'
    )),
    constraint interview_processes_offer_details_object
        check (offer_details is null or jsonb_typeof(offer_details) = 'object'),
    constraint interview_processes_updated_after_created check (updated_at >= created_at),
    constraint interview_processes_id_organization_key unique (id, organization_id),
    constraint interview_processes_candidate_fkey foreign key (candidate_id, organization_id)
        references public.candidates (id, organization_id) on update cascade
);

create table if not exists public.interview_stages (
    id uuid primary key default gen_random_uuid(),
    organization_id uuid not null,
    interview_process_id uuid not null,
    stage_name text not null check (char_length(stage_name) between 1 and 500 and btrim(stage_name) <> ''),
    stage_order integer not null,
    scheduled_date timestamptz,
    completed_date timestamptz,
    outcome text not null default 'pending',
    overall_rating smallint check (overall_rating between 1 and 5),
    technical_rating smallint check (technical_rating between 1 and 5),
    culture_fit_rating smallint check (culture_fit_rating between 1 and 5),
    communication_rating smallint check (communication_rating between 1 and 5),
    feedback_notes text check (char_length(feedback_notes) >= 1),
    interviewer_names text[] not null default '{}',
    next_steps text check (char_length(next_steps) >= 1),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null,  -- defaults to created_at (trigger)
    constraint interview_stages_stage_order_check check (stage_order >= 1 and stage_order <= 1000),
    constraint interview_stages_outcome_check
        check (outcome in ('pending', 'passed', 'failed', 'cancelled', 'no_show')),
    constraint interview_stages_completed_after_scheduled check (completed_date >= scheduled_date),
    constraint interview_stages_interviewer_names_not_null
        check (array_position(interviewer_names, null) is null),
    constraint interview_stages_updated_after_created check (updated_at >= created_at),
    constraint interview_stages_process_stage_order_key unique (interview_process_id, stage_order),
    constraint interview_stages_process_fkey foreign key (interview_process_id, organization_id)
        references public.interview_processes (id, organization_id) on delete cascade
);

-- Every status a process takes, written by a trigger (never by applications): an audit log,
-- kept when its process is deleted (no foreign key) and never changed or deleted.
create table if not exists public.interview_status_history (
    id bigint generated always as identity primary key,
    organization_id uuid not null,
    interview_process_id uuid not null,
    from_status text,
    to_status text not null,
    changed_at timestamptz not null,
    changed_by uuid,
    run_id text,
    source text not null default 'postgres',
    recorded_at timestamptz not null default clock_timestamp()
);

-- Indexes: the columns row-level security filters on, the foreign keys, the extract's watermark.
create index if not exists candidates_organization_id_idx on public.candidates (organization_id);
create index if not exists candidates_updated_at_idx on public.candidates (updated_at);
create index if not exists interview_processes_organization_recruiter_idx
    on public.interview_processes (organization_id, recruiter_id);
create index if not exists interview_processes_candidate_idx
    on public.interview_processes (candidate_id, organization_id);
create index if not exists interview_processes_company_status_idx
    on public.interview_processes (company_name, status);
create index if not exists interview_processes_updated_at_idx on public.interview_processes (updated_at);
create index if not exists interview_stages_organization_id_idx on public.interview_stages (organization_id);
create index if not exists interview_stages_process_org_idx
    on public.interview_stages (interview_process_id, organization_id);
create index if not exists interview_stages_updated_at_idx on public.interview_stages (updated_at);
create index if not exists interview_status_history_organization_id_idx
    on public.interview_status_history (organization_id);
create index if not exists interview_status_history_process_idx
    on public.interview_status_history (interview_process_id);
create index if not exists interview_status_history_recorded_at_idx
    on public.interview_status_history (recorded_at);
