-- An id changed at the source (`update candidates set id = ...`, which a recruiter may do and
-- `on update cascade` spreads to the candidate's processes) is, for everyone downstream, the
-- old id deleted and a new one created: the nightly extract matches rows by id, so without an
-- entry in deleted_rows the old id stayed in the raw store beside the new one (one candidate
-- counted twice by the marts). The same function as for a DELETE logs the old id (it reads
-- only OLD); the row under its new id is extracted as a new row.

select itrack.replace_trigger(
    t, 'record_id_change',
    'after update of id on public.%2$I for each row when (old.id is distinct from new.id)'
    ' execute function itrack.record_deletion()'
)
from unnest(array['candidates', 'interview_processes', 'interview_stages']) as t;
