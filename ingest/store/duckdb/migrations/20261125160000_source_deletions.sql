-- Rows deleted in an operational PostgreSQL store (its `deleted_rows` log), and so deleted here
-- by the nightly extract: which source, table and id, when, by which run. The status history
-- and corrections of a deleted process stay (nobody deletes history); the marts join history
-- to the processes that exist, so it drops out of them.
create table if not exists source_deletions (
    source varchar not null,
    table_name varchar not null,
    record_id varchar not null,
    deleted_at timestamp not null,
    run_id varchar not null,
    primary key (source, table_name, record_id, deleted_at)
);
