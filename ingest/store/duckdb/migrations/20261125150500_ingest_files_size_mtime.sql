-- The skip check of unchanged files by size and modification time (before hashing them).
alter table ingest_files add column if not exists size_bytes bigint;
alter table ingest_files add column if not exists mtime_ns bigint;
