"""The operational store on PostgreSQL/Supabase: schema in supabase/migrations, adapter in
repository.py."""
