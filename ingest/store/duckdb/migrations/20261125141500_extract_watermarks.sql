-- The nightly extract's watermark per source database and table (ingest/extract.py): the
-- newest updated_at (recorded_at for the status history) of the last successful extract,
-- written in the same transaction as the rows it pulled.
create table if not exists extract_watermarks (
    source varchar not null,
    table_name varchar not null,
    watermark timestamp,
    run_id varchar not null,
    updated_at timestamp not null,
    primary key (source, table_name)
);
