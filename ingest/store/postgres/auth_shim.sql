-- What Supabase provides and plain PostgreSQL lacks: the API roles and the `auth` helpers that
-- read the request's JWT claims from the transaction setting `request.jwt.claims` (as
-- PostgREST sets it). Applied by `itrack db upgrade --auth-shim` (and by the tests) before the
-- migrations; never on Supabase, which has its own. Idempotent.

do $$
begin
    create role anon nologin noinherit;
exception when duplicate_object or unique_violation then
    null;
end
$$;

do $$
begin
    create role authenticated nologin noinherit;
exception when duplicate_object or unique_violation then
    null;
end
$$;

do $$
begin
    create role service_role nologin noinherit bypassrls;
exception when duplicate_object or unique_violation then
    null;
end
$$;

create schema if not exists auth;
grant usage on schema auth to anon, authenticated, service_role;

create or replace function auth.jwt() returns jsonb
language sql stable
as $$
    select coalesce(
        nullif(current_setting('request.jwt.claim', true), ''),
        nullif(current_setting('request.jwt.claims', true), '')
    )::jsonb
$$;

create or replace function auth.uid() returns uuid
language sql stable
as $$
    select nullif(
        coalesce(
            current_setting('request.jwt.claim.sub', true),
            (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
        ),
        ''
    )::uuid
$$;

create or replace function auth.role() returns text
language sql stable
as $$
    select nullif(
        coalesce(
            current_setting('request.jwt.claim.role', true),
            (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
        ),
        ''
    )::text
$$;
