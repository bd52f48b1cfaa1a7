-- What Supabase provides and plain PostgreSQL lacks: the API roles and the `auth` helpers that
-- read the request's JWT claims from the transaction setting `request.jwt.claims` (as
-- PostgREST sets it). Applied by `itrack db upgrade --auth-shim` (and by the tests) before the
-- migrations; never on Supabase, which has its own. Idempotent.

do $$
declare
    api_role record;
begin
    for api_role in
        select * from (values
            ('anon', 'nologin noinherit'),
            ('authenticated', 'nologin noinherit'),
            ('service_role', 'nologin noinherit bypassrls')
        ) as roles (name, options)
    loop
        begin
            execute format('create role %I %s', api_role.name, api_role.options);
        exception when duplicate_object or unique_violation then
            null;  -- another database of this server (or a parallel test) made it first
        end;
    end loop;
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
