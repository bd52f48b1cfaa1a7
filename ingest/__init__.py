"""interview-tracking ingest: the record contract, readers, validation and the raw store."""
