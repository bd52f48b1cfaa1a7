"""Readers: every input format lands as one row per record, `(line_no, raw JSON text)`.

Landing everything as JSON text keeps one validation path for all formats: the bulk SQL checks
and pydantic both read the same object. In a columnar file (CSV, Parquet) an empty or null cell
is an absent field, so it lands as a missing key (see "columnar files: null = absent" below).
Line numbers are physical lines for JSONL, rows for CSV (header = line 1) and Parquet, array
positions (1-based) for JSON arrays.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import json
import os
import re
import sys
import types
import typing
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

import duckdb

from ingest.contract import MODELS, Record
from ingest.errors import DuplicateKey, UserError, json_reason, refuse_duplicate_keys
from ingest.inputs import FileProblem, InputFile
from ingest.sqltext import sql_text
from ingest.text import storable

_INTEGER = re.compile(r"-?[0-9]+")
BATCH_ROWS = 50_000  # rows the Python readers hold before handing them to DuckDB
# One record (a JSONL line, an element of a JSON array, a CSV field) larger than this is
# quarantined as `record_too_large` without being held in memory; the rest of its file loads.
# Far above any valid record (the contract caps text fields at 2M characters).
MAX_RECORD_BYTES = 64 << 20
# A JSON file up to this size is parsed whole (fast); a larger one is split element by element,
# so memory stays bounded by MAX_RECORD_BYTES whatever the file size.
MAX_WHOLE_JSON_BYTES = 64 << 20
csv.field_size_limit(MAX_RECORD_BYTES)


@dataclass(frozen=True)
class FileScan:
    """What one pass over the bytes learns: the sha256, the physical line count, a BOM."""

    sha256: str
    lines: int
    bom: bool


def scan(path: Path) -> FileScan:
    """sha256 and line count in one pass (run in a thread while DuckDB reads the same file:
    hashlib releases the GIL on large chunks)."""
    digest, lines, last, first = hashlib.sha256(), 0, b"", b""
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 22):
                if not first:
                    first = chunk[:3]
                digest.update(chunk)
                lines += chunk.count(b"\n")
                last = chunk[-1:]
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror})") from None
    if last and last != b"\n":
        lines += 1  # a last line without its newline
    return FileScan(digest.hexdigest(), lines, first.startswith(b"\xef\xbb\xbf"))


def has_long_line(path: Path, limit: int = MAX_RECORD_BYTES, chunk: int = 1 << 16) -> bool:
    """Whether the file holds a line over `limit` bytes (its newline not counted), reading only a
    little of it: such a line spans a multiple of `limit`, so from each such probe the newlines
    before and after it are looked for (usually within a few hundred bytes). Positional reads,
    not a memory map: a file truncated meanwhile reads short instead of killing the process."""
    try:
        with path.open("rb") as handle:
            fd = handle.fileno()
            size = os.fstat(fd).st_size
            for probe in range(limit, size, limit):
                # the line around the probe starts after `before` (-1: the file's start) and
                # ends at `after` (the file's end when it has no newline there)
                start = max(probe - limit - 1, 0)
                before = _find_newline(fd, start, probe, chunk, backwards=True)
                if before < 0 and start > 0:
                    return True  # no newline in the `limit` + 1 bytes before the probe
                after = _find_newline(fd, probe, min(probe + limit + 1, size), chunk)
                if after < 0 and probe + limit + 1 < size:
                    return True  # none in the `limit` + 1 bytes from it
                if (after if after >= 0 else size) - before - 1 > limit:
                    return True
    except (OSError, TypeError, AttributeError):
        return False  # not a readable file: the readers report it
    return False


def _find_newline(fd: int, start: int, end: int, chunk: int, backwards: bool = False) -> int:
    """The offset of the first (or, `backwards`, the last) newline in bytes [start, end) of
    file `fd`, or -1; read `chunk` bytes at a time from the end it searches from."""
    if backwards:
        high = end
        while high > start:
            low = max(start, high - chunk)
            found = os.pread(fd, high - low, low).rfind(b"\n")
            if found >= 0:
                return low + found
            high = low
        return -1
    low = start
    while low < end:
        data = os.pread(fd, min(chunk, end - low), low)
        if not data:
            return -1  # the file ended early (truncated meanwhile)
        found = data.find(b"\n")
        if found >= 0:
            return low + found
        low += len(data)
    return -1


def land(con: duckdb.DuckDBPyConnection, source: InputFile, table: str) -> None:
    """Fill `table (line_no, raw)` with the file's records; record-level problems are collected."""
    reader = {
        "jsonl": _land_jsonl,
        "json": _land_json_array,
        "csv": _land_csv,
        "parquet": _land_parquet,
    }[source.fmt]
    reader(con, source, table)


# ---------------------------------------------------------------- fast readers
#
# A fast reader lets DuckDB parse the file once, straight into one raw JSON token per contract
# field plus the key list, checked as it streams into `checked_<kind>`; it lands no raw text.
# It takes a file only when the line numbers are certain (one record per physical line: the row
# count equals the line count, so no blank line, no quoted newline) and DuckDB reads it without
# error; anything else
# (a malformed line, a duplicate key, a BOM, invalid UTF-8, a ragged CSV row) returns False and
# the file takes the line reader below, exactly as before. Rows the checks do not accept have
# their raw text read back (`read_back`) and go to pydantic, like line-read rows.

FAST_READERS = True  # the tests turn it off to prove both paths give the same store
FAST_REC = 1 << 32  # rec = file index * FAST_REC + line number
MAX_OBJECT_BYTES = 64 << 20


def land_fast(
    con: duckdb.DuckDBPyConnection, source: InputFile, index: int, scanned: Future[FileScan]
) -> bool:
    reader = {"jsonl": _fast_jsonl, "csv": _fast_csv, "parquet": _fast_parquet}.get(source.fmt)
    if reader is None or not FAST_READERS:
        return False
    from ingest.validate import compile_model

    fields = list(MODELS[source.kind].model_fields)
    target = f"checked_{source.kind}"
    path = source.label
    # DuckDB reads a line whole, however long: a file holding a line over the limit goes to the
    # line reader (which quarantines it in bounded memory) before DuckDB reads it.
    if source.fmt != "parquet" and has_long_line(source.path):
        return False
    try:
        found = reader(con, source, fields)
        if found is None:
            return False
        rows_sql = f"(select null::bigint as rec, null::varchar as file_path, * from ({found.sql}))"
        checked = compile_model(MODELS[source.kind]).checked_sql(rows_sql, found.given)
        if found.numbered:  # every row's line is known: checked straight into the kind's table
            con.execute(
                f"""insert into {target} by name
                select ? + line_no as rec, ?::varchar as file_path, * exclude (rec, file_path)
                from ({checked})""",
                [index * FAST_REC, path],
            )
        else:
            # Checked in parallel into a table of this file alone, in file order (DuckDB keeps
            # the insertion order, so a row's rowid is its position in the file): no
            # row_number() window, which would run the whole scan and every check on one thread.
            con.execute(f"create or replace temp table fast_file as {checked}")
            first = 2 if source.fmt == "csv" else 1  # the line of the first record (CSV: header)
            con.execute(
                f"""insert into {target} by name
                select ? + rowid + {first} as rec, ?::varchar as file_path,
                       coalesce(line_no, rowid + {first}) as line_no,
                       * exclude (rec, file_path, line_no)
                from fast_file""",
                [index * FAST_REC, path],  # (a skipped blank CSV row keeps line_no < 0)
            )
    except duckdb.Error:
        con.execute(f"delete from {target} where file_path = ?", [path])
        return False
    finally:
        con.execute("drop table if exists fast_file")
    rows, unusual, blank = con.execute(
        f"""select count(*), count(*) filter (where has_stages),
                   count(*) filter (where line_no < 0)
            from {target} where file_path = ?""",
        [path],
    ).fetchone()
    expected = scanned.result().lines - (1 if source.fmt == "csv" else 0)
    if (
        (source.fmt != "parquet" and (scanned.result().bom or rows != expected))
        or (source.kind == "processes" and unusual)  # inline stages: the line reader splits them
        or blank  # a CSV row of blank cells (the Python reader skips it), a Parquet row
        # too large (the line reader quarantines it)
    ):
        con.execute(f"delete from {target} where file_path = ?", [path])
        return False
    con.execute(
        f"""insert into landing (rec, kind, file_path, line_no, raw, fast)
        select rec, ?, file_path, line_no, null, true from {target} where file_path = ?""",
        [source.kind, path],
    )
    return True


@dataclass(frozen=True)
class FastSelect:
    """A fast reader's query: `line_no, keys, v_<field>...`, and the values it gives instead of
    a token for the fields in `given` (CompiledModel.checked_sql). `line_no` is -1 on a row
    the line reader must take the file for; otherwise, when `numbered`, the row's line, else
    null (its position in the file numbers it)."""

    sql: str
    given: frozenset[str] = frozenset()
    numbered: bool = False


def _fast_jsonl(con: duckdb.DuckDBPyConnection, source: InputFile, fields: list[str]) -> FastSelect:
    """One scan of the lines (DuckDB splits them and refuses a malformed one), each parsed as
    the line reader's rows are (`parse_sql`: the field tokens and the key list)."""
    from ingest.validate import compile_model

    path = sql_text(str(source.path))
    options = f"format='newline_delimited', maximum_object_size={MAX_OBJECT_BYTES}"
    lines = f"""(select 0::bigint as rec, ''::varchar as file_path, null::bigint as line_no,
                        json as raw
                 from read_json_objects({path}, {options}))"""
    tokens = ", ".join(f"v_{f}" for f in fields)
    parsed = compile_model(MODELS[source.kind]).parse_sql(lines)
    return FastSelect(f"select line_no, keys, {tokens} from ({parsed})")


# Parquet column types whose values `to_json` writes as JSON integers (json_type UBIGINT from 0
# up, BIGINT below), spelled as DuckDB casts them to text
_INTEGER_TYPES = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT"} | {
    f"U{t}" for t in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT")
}


def _integer_json_type(n: str) -> str:
    """SQL: the `json_type` DuckDB gives the JSON number of integer `n` (a typed column's value
    or a CSV cell's): UBIGINT from 0 to 2**64 - 1, BIGINT below 0 down to -2**63, else DOUBLE."""
    return (
        f"case when {n} between 0 and {2**64 - 1} then 'UBIGINT' "
        f"when {n} between {-(2**63)} and -1 then 'BIGINT' else 'DOUBLE' end"
    )


def _typed_text(column_type: str, x: str) -> tuple[str, str] | None:
    """(JSON type, text) of a typed column's non-null value `x` as its `to_json` token would
    give them (`_json_type`, `_json_text`), without the token; None for other column types."""
    if column_type == "VARCHAR":
        return "'VARCHAR'", x
    if column_type in _INTEGER_TYPES:
        return _integer_json_type(x), f"{x}::varchar"
    return None


def _fast_parquet(
    con: duckdb.DuckDBPyConnection, source: InputFile, fields: list[str]
) -> FastSelect:
    from ingest.validate import compile_model

    path = sql_text(str(source.path))
    types = _parquet_types(con, str(source.path))
    names = list(types)
    present = _parquet_present(names)
    compiled = compile_model(MODELS[source.kind])
    # a null cell gives no token (to_json(null) is null) and no key: the field is absent
    picks, given = [], set()
    for f in fields:
        x = f"t.{_ident(f)}" if f in types else None
        typed = _typed_text(types[f], x) if x and compiled.text_only(f) else None
        if typed:  # its type and text straight from the column: no token built and parsed
            picks.append(f"{x} as v_{f}, {typed[0]} as t_{f}, {typed[1]} as s_{f}")
            given.add(f)
        elif x and types[f] == "VARCHAR[]" and compiled.field(f).list_check:
            picks.append(f"{x} as v_{f}, {x} as l_{f}")  # a list of strings, as it is
            given.add(f)
        else:
            picks.append(f"{_cell_json(f, types[f])} as v_{f}" if x else f"null::json as v_{f}")
    # A row over MAX_RECORD_BYTES as JSON marks itself (line_no -1) and the file takes the line
    # reader, which quarantines it as `record_too_large`. A row's line is its position, which
    # DuckDB gives (unless a column has the name it gives it).
    numbered = "file_row_number" not in types
    position = "file_row_number + 1" if numbered else "null"
    options = ", file_row_number = true" if numbered else ""
    return FastSelect(
        f"""
        select case when {_parquet_row_too_large(types)} then -1 else {position} end as line_no,
               {_columnar_keys(names, present)} as keys, {", ".join(picks)}
        from read_parquet({path}, {PARQUET_OPTIONS}{options}) t""",
        frozenset(given),
        numbered,
    )


# ---------------------------------------------------------------- columnar files: null = absent
#
# In a columnar file (CSV, Parquet) every row has every column, so a record cannot leave a field
# out: an empty CSV cell or a null Parquet cell is how it says "absent". Every reader of such a
# file (fast and line) lands that cell as a missing key, and the contract treats it as any
# absent field: its default (`interviewer_names` = []), None, or `missing_field` when required.
# JSON and JSONL can leave a key out, so there an explicit null is a value the contract judges.


def _columnar_keys(names: list[str], present: dict[str, str]) -> str:
    """SQL: the key list of a columnar row, the names of its present cells in file order (a row
    with every cell present has the whole header, without building a list)."""
    every = "[" + ", ".join(sql_text(n) for n in names) + "]::varchar[]"
    if not names:
        return every
    return (
        f"case when {' and '.join(present[n] for n in names)} then {every} else list_filter(["
        + ", ".join(f"case when {present[n]} then {sql_text(n)} end" for n in names)
        + "], lambda k: k is not null) end"
    )


# A binary column without the string annotation (older writers store text so) is read as text:
# as bytes to_json spelled é as the literal text \xC3\xA9. Bytes that are not UTF-8 make the file
# unreadable (exit 2 naming it), as invalid UTF-8 in a JSON file leaves none of it loaded.
PARQUET_OPTIONS = "binary_as_string = true"


def _parquet_types(con: duckdb.DuckDBPyConnection, path: str) -> dict[str, str]:
    """Column name -> DuckDB type of a Parquet file, in file order. A file naming a column
    twice (or two whose names differ only in case, which DuckDB cannot tell apart) is refused
    whole, as a CSV header naming one twice is: DuckDB would read the second as `name_1`."""
    names = _parquet_column_names(con, path)
    folded = [name.lower() for name in names]
    twice = sorted({name for name in names if folded.count(name.lower()) > 1})
    if twice:
        raise UserError(
            f"{path}: column {', '.join(twice)} appears more than once in the schema (names "
            "that differ only in case count as one; which value is meant?); nothing of this "
            "file was read"
        )
    described = con.execute(
        f"describe select * from read_parquet(?, {PARQUET_OPTIONS})", [path]
    ).fetchall()
    return {r[0]: r[1] for r in described}


def _parquet_column_names(con: duckdb.DuckDBPyConnection, path: str) -> list[str]:
    """The top-level column names as the file's schema holds them (repeats kept): its schema
    tree depth first, the root then each column with its nested fields after it."""
    tree = con.execute("select name, num_children from parquet_schema(?)", [path]).fetchall()

    def after(i: int) -> int:  # the index past the subtree starting at i
        children = tree[i][1] or 0
        i += 1
        for _ in range(children):
            i = after(i)
        return i

    names, i = [], 1
    while i < len(tree):
        names.append(tree[i][0])
        i = after(i)
    return names


def _parquet_present(names: list[str]) -> dict[str, str]:
    """SQL per column of a Parquet row `t`: the cell is present (not null)."""
    return {n: f"(t.{_ident(n)} is not null)" for n in names}


def _json_key(name: str) -> str:
    return json.dumps(name, ensure_ascii=False)


def _cell_json(name: str, column_type: str) -> str:
    """SQL: the cell `name` of a Parquet row `t` as its JSON token (`to_json`), on every reader.
    A timestamp with a time zone (how Spark and pandas write UTC instants) is ISO 8601 text in
    UTC: to_json spells its offset `+00`, which ISO 8601 does not, and every row was refused.
    (In nanoseconds, pandas' unit, DuckDB reads it as TIMESTAMPTZ_NS.)"""
    x = f"t.{_ident(name)}"
    if column_type in ("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ_NS"):
        return f"to_json(strftime(timezone('UTC', {x}), '%Y-%m-%dT%H:%M:%S.%f') || 'Z')"
    return f"to_json({x})"


def _parquet_row_json(types: dict[str, str], cell_chars: int | None = None) -> str:
    """SQL: a Parquet row `t` (its columns' `types`) as the JSON text the line reader lands,
    its present cells in file order, each value as `_cell_json` spells it; a null cell is left
    out (absent). With `cell_chars`, each value is cut to that many characters (a preview)."""
    present = _parquet_present(list(types))
    members = []
    for n, typ in types.items():
        value = _cell_json(n, typ)
        if cell_chars is not None:
            value = f"left({value}, {cell_chars})"
        members.append(f"case when {present[n]} then {sql_text(_json_key(n) + ':')} || {value} end")
    return f"concat('{{', concat_ws(',', {', '.join(members) or 'null'}), '}}')"


def _parquet_row_size(types: dict[str, str]) -> str:
    """SQL: the length in bytes of `_parquet_row_json(types)`, without building it (a cell may
    be far over MAX_RECORD_BYTES)."""
    members = " + ".join(
        f"coalesce({len(_json_key(n).encode()) + 2} + strlen({_cell_json(n, typ)}), 0)"
        for n, typ in types.items()
    )
    # "{" + each present `"key":value,` + "}" minus the last comma; "{}" when none is present
    return f"greatest(2, 1 + {members or 0})"


def _parquet_row_too_large(types: dict[str, str]) -> str:
    """SQL: `_parquet_row_size` is over MAX_RECORD_BYTES, measured only where a cheap upper
    bound is (a text cell's JSON takes at most 6 bytes per byte of it, as in `\\u001f`, plus its
    quotes): building every cell's JSON only to measure the row costs a text-heavy file more
    than its checks."""
    cells = []
    for n, typ in types.items():
        x = f"t.{_ident(n)}"
        size = f"6 * strlen({x}) + 2" if typ == "VARCHAR" else f"strlen({_cell_json(n, typ)})"
        cells.append(f"coalesce({len(_json_key(n).encode()) + 2} + {size}, 0)")
    bound = " + ".join(cells)
    exact = f"{_parquet_row_size(types)} > {MAX_RECORD_BYTES}"
    return f"case when 1 + {bound or 0} > {MAX_RECORD_BYTES} then {exact} else false end"


def _fast_csv(
    con: duckdb.DuckDBPyConnection, source: InputFile, fields: list[str]
) -> FastSelect | None:
    """CSV through DuckDB's reader, each cell typed as the Python reader's `coerce_text_row`
    would; a row whose cells it cannot mirror exactly gets no key list, so it goes to pydantic
    with the Python reader's text."""
    from ingest.validate import _NOT_WHITESPACE, compile_model, maybe_trailing_comma

    with source.path.open("rb") as handle:
        first = handle.readline()
    try:
        header = next(csv.reader([first.decode("utf-8")]))
    except (UnicodeDecodeError, StopIteration, csv.Error):
        return None
    header = [name.strip() for name in header]
    if len(set(header)) != len(header) or not header:
        return None
    model = MODELS[source.kind]
    path = sql_text(str(source.path))
    columns = "{" + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(len(header))) + "}"
    cells = [f"c{i}" for i in range(len(header))]
    present = {name: f"(c{i} is not null and c{i} <> '')" for i, name in enumerate(header)}
    # a row of blank cells (the Python reader skips it); a cell starting with a visible ASCII
    # character is not blank, which settles nearly every row without a regex per cell
    visible = " or ".join(f"ascii({c}) between 33 and 126" for c in cells)
    whitespace = " and ".join(
        f"not regexp_matches(coalesce({c}, ''), '{_NOT_WHITESPACE}')" for c in cells
    )
    blank = f"case when {visible} then false else {whitespace} end"
    ascii_only = "regexp_full_match({x}, '[!-~][ -~]*')"  # no leading space, printable ASCII
    compiled = compile_model(model)
    picks, doubtful, given = [], [], set()
    helpers = []  # computed once per row, below the picks and checks that use them
    for f in fields:
        if f not in present:
            picks.append(f"null::json as v_{f}")
            continue
        x = f"c{header.index(f)}"
        before = len(doubtful)
        base = field_base(model, f)
        origin = typing.get_origin(base)
        # the cell as a JSON token, or (text_only fields) the JSON type and text such a token
        # would have, without building it and parsing it back
        value, typed = "", None
        if base is int:
            # an integer cell reads as the JSON number of its value ("007" -> 7), any other
            # as text
            integer, n = f"i_{x}", f"n_{x}"  # looks like an integer; its value
            helpers += [
                f"regexp_full_match({x}, ' *-?[0-9]+ *') as {integer}",
                f"try_cast(trim({x}) as hugeint) as {n}",
            ]
            doubtful.append(f"({integer} and {n} is null)")
            if compiled.text_only(f):
                typed = (
                    f"case when {integer} then {_integer_json_type(n)} else 'VARCHAR' end",
                    f"case when {integer} then {n}::varchar else {x} end",
                )
            else:
                value = f"case when {integer} then {n}::varchar::json else to_json({x}) end"
        elif origin is list:
            value = (
                f"case when starts_with({x}, '[') then try(json({x})) else to_json("
                f"list_filter(list_transform(string_split({x}, ';'), lambda p: trim(p)), "
                "lambda p: p <> '')) end"
            )
            doubtful.append(f"not {ascii_only.format(x=x)}")
            doubtful.append(f"(starts_with({x}, '[') and try(json({x})) is null)")
            doubtful.append(f"(starts_with({x}, '[') and {maybe_trailing_comma(x)})")
        elif isinstance(base, type) and issubclass(base, Record):
            value = f"case when starts_with({x}, '{{') then try(json({x})) else to_json({x}) end"
            doubtful.append(f"not {ascii_only.format(x=x)}")
            doubtful.append(f"(starts_with({x}, '{{') and try(json({x})) is null)")
            # what DuckDB reads and Python's JSON does not (a trailing comma), or reads
            # differently (a key twice: one value kept): the Python reader's text decides
            keys = f"try(json_keys({x}))"
            doubtful.append(
                f"(starts_with({x}, '{{') and ({maybe_trailing_comma(x)}"
                f" or len({keys}) <> len(list_distinct({keys}))))"
            )
        elif compiled.text_only(f):
            typed = ("'VARCHAR'", x)
        else:
            value = f"to_json({x})"
        doubtful[before:] = [f"({present[f]} and {d})" for d in doubtful[before:]]
        if typed is None:
            picks.append(f"case when {present[f]} then {value} end as v_{f}")
            continue
        json_type, text = typed
        picks.append(
            f"case when {present[f]} then {x} end as v_{f}, {json_type} as t_{f}, "
            f"case when {present[f]} then {text} end as s_{f}"
        )
        given.add(f)
    key_list = _columnar_keys(header, present)  # the names of the non-empty cells
    doubt = " or ".join(f"coalesce({d}, false)" for d in doubtful) or "false"
    options = (
        "header=true, delim=',', quote='\"', escape='\"', auto_detect=false, "
        "strict_mode=true, null_padding=false"
    )
    return FastSelect(
        f"""
        select case when {blank} then -1 end as line_no,
               case when {doubt} then null else {key_list} end as keys, {", ".join(picks)}
        from (select *{"".join(", " + h for h in helpers)}
              from read_csv({path}, {options}, columns={columns}))""",
        frozenset(given),
    )


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def read_back(
    con: duckdb.DuckDBPyConnection, source: InputFile, lines: list[int], table: str
) -> None:
    """Fill `table (line_no, raw)` with the given lines of a fast-read file, exactly as the
    line reader would have landed them."""
    con.execute(f"delete from {table}")
    path = str(source.path)
    if source.fmt == "jsonl":
        con.execute(
            f"""insert into {table}
            select line_no, raw from ({_LINES_SQL}) where line_no in (select unnest(?))""",
            [path, lines],
        )
    elif source.fmt == "parquet":
        types = _parquet_types(con, path)
        row = _parquet_row_json(types)
        if "file_row_number" in types:  # DuckDB's own name for the row's position: numbered here
            con.execute(
                f"""insert into {table}
                select line_no, raw from (select row_number() over () as line_no,
                                                 {row} as raw
                                          from read_parquet(?, {PARQUET_OPTIONS}) t)
                where line_no in (select unnest(?))""",
                [path, lines],
            )
            return
        # Only the wanted rows are turned into JSON (as the line reader lands them), found by
        # their position in the file, in parallel.
        con.execute(
            f"""insert into {table}
            select file_row_number + 1 as line_no, {row} as raw
            from read_parquet(?, {PARQUET_OPTIONS}, file_row_number = true) t
            where file_row_number + 1 in (select unnest(?))""",
            [path, lines],
        )
    else:
        wanted, got_lines, raws = set(lines), [], []
        for line_no, raw in _csv_records(source, max(lines)):
            if line_no in wanted and isinstance(raw, str):
                got_lines.append(line_no)
                raws.append(raw)
        _insert(con, table, got_lines, raws)


def _land_jsonl(con: duckdb.DuckDBPyConnection, source: InputFile, table: str) -> None:
    # DuckDB splits lines at near its own load speed; the delimiter is NUL and quoting off, so
    # each physical line is one value. It refuses a file with invalid UTF-8 (and a failed
    # statement would abort the run's transaction), so such files take the Python reader.
    # A line over MAX_RECORD_BYTES would fail the whole statement: the Python reader skips it.
    if not _is_utf8(source.path, MAX_RECORD_BYTES):
        _land_jsonl_python(con, source, table)
        return
    con.execute(f"insert into {table} {_LINES_SQL}", [str(source.path)])


# One row per physical line: the delimiter is NUL and quoting off, so each line is one value.
_LINES_SQL = f"""
    select line_no, raw from (
        select row_number() over () as line_no, line as raw
        from read_csv(?, columns={{'line': 'VARCHAR'}}, header=false, delim='\\0',
                      quote='', escape='', auto_detect=false, strict_mode=false,
                      max_line_size={MAX_RECORD_BYTES}))
    where raw is not null and trim(raw) <> ''"""


def _is_utf8(path: Path, max_line: int | None = None) -> bool:
    """Valid UTF-8 (and, given `max_line`, no line longer than that many bytes)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    running = 0  # bytes since the last newline
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 22):
                decoder.decode(chunk)
                if max_line is not None:
                    first = chunk.find(b"\n")
                    if first < 0:
                        running += len(chunk)
                    else:
                        # lines inside one 4 MB chunk are shorter than any sensible limit
                        if running + first > max_line:
                            return False
                        running = len(chunk) - chunk.rfind(b"\n") - 1
                    if running > max_line:
                        return False
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _read_line(handle, line_no: int, source: InputFile) -> bytes | None:
    """The next physical line (b"" at the end), or None for a line over MAX_RECORD_BYTES, which
    is skipped without being held in memory and reported as `record_too_large`."""
    data = handle.readline(MAX_RECORD_BYTES + 1)
    if len(data) <= MAX_RECORD_BYTES or data.endswith(b"\n"):
        return data
    size, preview = len(data), data[:200].decode("utf-8", errors="replace")
    while more := handle.readline(1 << 20):
        size += len(more)
        if more.endswith(b"\n"):
            break
    source.problems.append(_too_large(line_no, size, preview))
    return None


_UTF16_FILE = (
    "file is not valid UTF-8 (byte 0: a UTF-16 byte order mark); no record of this file was loaded"
)


def _land_jsonl_python(con: duckdb.DuckDBPyConnection, source: InputFile, table: str) -> None:
    lines, raws = [], []
    with source.path.open("rb") as handle:
        line_no = 0
        while True:
            line_no += 1
            data = _read_line(handle, line_no, source)
            if data is None:
                continue
            if not data:
                break
            if line_no == 1 and data.startswith(b"\xef\xbb\xbf"):
                data = data[3:]
            if line_no == 1 and data.startswith((b"\xff\xfe", b"\xfe\xff")):
                # UTF-16 (or 32): every line is bytes of it, the line breaks included; refused
                # whole as a JSON or CSV file is, not as one bad line and one "malformed" more
                source.problems.append(FileProblem(None, "invalid_utf8", _UTF16_FILE))
                return
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError as exc:
                source.problems.append(
                    FileProblem(
                        line_no,
                        "invalid_utf8",
                        f"line is not valid UTF-8 (byte {exc.start})",
                        data.decode("utf-8", errors="replace").rstrip("\r\n"),
                    )
                )
                continue
            if text.strip():
                lines.append(line_no)
                raws.append(text.rstrip("\r\n"))
            if len(lines) >= BATCH_ROWS:
                _insert(con, table, lines, raws)
                lines, raws = [], []
    _insert(con, table, lines, raws)


def _land_json_array(con: duckdb.DuckDBPyConnection, source: InputFile, table: str) -> None:
    """A JSON array of records (or one record). Up to MAX_WHOLE_JSON_BYTES it is parsed whole;
    a larger file, or one nested too deeply for a whole parse, is split element by element
    (memory bounded by MAX_RECORD_BYTES), each element parsed on its own: an element too large
    or too deep is quarantined with its reason while the others load."""
    try:
        size = source.path.stat().st_size
    except OSError as exc:
        raise UserError(f"{source.path}: cannot read ({exc.strerror})") from None
    if size > MAX_WHOLE_JSON_BYTES:
        _land_json_elements(con, source, table)
        return
    try:
        text = source.path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        source.problems.append(
            FileProblem(None, "invalid_utf8", f"file is not valid UTF-8 (byte {exc.start})")
        )
        return
    if not text.strip():
        return
    try:
        data = json.loads(text, object_pairs_hook=refuse_duplicate_keys)
    except (RecursionError, DuplicateKey):  # split: each element is read (and judged) alone
        _land_json_elements(con, source, table)
        return
    except json.JSONDecodeError as exc:
        source.problems.append(
            FileProblem(
                exc.lineno,
                "malformed_json",
                f"malformed JSON ({exc.msg.removesuffix(' at')} at line {exc.lineno} "
                f"column {exc.colno}); "
                "no record of this file was loaded",
                text[:2000],
            )
        )
        return
    except ValueError:  # a number too long to read: split, that element alone is quarantined
        _land_json_elements(con, source, table)
        return
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        source.problems.append(
            FileProblem(None, "not_an_object", "a JSON file must hold an array of objects")
        )
        return
    raws = []
    for position, item in enumerate(data, start=1):
        try:
            raws.append((position, _storable_json(item)))
        except RecursionError:
            source.problems.append(_too_deep(position))
    _insert(con, table, [p for p, _ in raws], [r for _, r in raws])


def _too_deep(position: int | None) -> FileProblem:
    return FileProblem(
        position, "too_deeply_nested", "the record is nested too deeply to read; not loaded"
    )


def _land_json_elements(con: duckdb.DuckDBPyConnection, source: InputFile, table: str) -> None:
    lines, raws = [], []
    try:
        for position, element in split_json_array(source.path, MAX_RECORD_BYTES):
            if isinstance(element, int):  # the size of an element over the limit
                source.problems.append(_too_large(position, element, None, "record"))
                continue
            try:
                text = element.decode("utf-8")
                json.loads(text)  # well-formed (the checks read it again from the text)
            except UnicodeDecodeError as exc:
                source.problems.append(
                    FileProblem(position, "invalid_utf8", f"not valid UTF-8 (byte {exc.start})")
                )
                continue
            except RecursionError:
                source.problems.append(_too_deep(position))
                continue
            except ValueError as exc:  # malformed, or a number too long to read
                source.problems.append(
                    FileProblem(
                        position,
                        "malformed_json",
                        f"malformed JSON ({json_reason(exc)})",
                        text[:2000],
                    )
                )
                continue
            lines.append(position)
            raws.append(text)
            if len(lines) >= BATCH_ROWS:
                _insert(con, table, lines, raws)
                lines, raws = [], []
    except ValueError as exc:  # the file itself is not an array or object
        source.problems.append(FileProblem(None, "malformed_json", str(exc)))
    _insert(con, table, lines, raws)


_OUTSIDE = re.compile(rb'[\[\]{}",]')
_INSIDE = re.compile(rb'["\\]')


def split_json_array(path: Path, limit: int, chunk_size: int = 1 << 22):
    """Yield (position, element bytes) of the top-level array in `path` (a top-level object is
    one element), reading in chunks; an element over `limit` bytes yields (position, its size)
    and is never held whole. Raises ValueError if the file is not an array or object."""
    state = "start"  # start -> between <-> element; a single object: start -> element
    single = False
    depth, in_string, escaped = 0, False, False
    position, size = 0, 0
    element = bytearray()
    with path.open("rb") as handle:
        first = True
        while chunk := handle.read(chunk_size):
            if first:
                chunk, first = chunk.removeprefix(b"\xef\xbb\xbf"), False
            i, n = 0, len(chunk)
            while i < n:
                if state in ("start", "between"):
                    skip = b" \t\r\n" if state == "start" else b" \t\r\n,"
                    while i < n and chunk[i] in skip:
                        i += 1
                    if i == n:
                        break
                    head = chunk[i : i + 1]
                    if state == "start":
                        if head == b"[":
                            state, i = "between", i + 1
                            continue
                        if head != b"{":
                            raise ValueError("a JSON file must hold an array of objects")
                        single = True
                    elif head == b"]":
                        return
                    state, position, size, element, depth = (
                        "element",
                        position + 1,
                        0,
                        bytearray(),
                        0,
                    )
                j, end = i, None
                while j < n:
                    if in_string:
                        if escaped:
                            escaped, j = False, j + 1
                            continue
                        match = _INSIDE.search(chunk, j)
                        if match is None:
                            j = n
                            break
                        j = match.end()
                        if match.group() == b"\\":
                            escaped = True
                        else:
                            in_string = False
                        continue
                    match = _OUTSIDE.search(chunk, j)
                    if match is None:
                        j = n
                        break
                    c, j = match.group(), match.end()
                    if c == b'"':
                        in_string = True
                    elif c in (b"[", b"{"):
                        depth += 1
                    elif c in (b"]", b"}"):
                        if depth == 0:  # the array's own closing bracket
                            end = match.start()
                            break
                        depth -= 1
                        if depth == 0 and single:
                            end = j
                            break
                    elif depth == 0:  # a comma between elements
                        end = match.start()
                        break
                stop = end if end is not None else n
                size += stop - i
                if size <= limit:
                    element += chunk[i:stop]
                else:
                    element = bytearray()  # over the limit: only its size is kept
                i = stop
                if end is not None:
                    yield position, (bytes(element).strip() if size <= limit else size)
                    if single:
                        return
                    state = "between"
    if state == "element":
        raise ValueError(f"the file ends inside element {position}")
    if state == "start":
        return
    raise ValueError("the file ends before the array is closed")


def _land_csv(con: duckdb.DuckDBPyConnection, source: InputFile, table: str) -> None:
    lines, raws = [], []
    for line_no, item in _csv_records(source):
        if isinstance(item, FileProblem):
            source.problems.append(item)
            if item.code == "invalid_utf8":
                return  # the rows of this batch are dropped, as the file is refused
            continue
        lines.append(line_no)
        raws.append(item)
        if len(lines) >= BATCH_ROWS:  # memory grows with the batch, not the file
            _insert(con, table, lines, raws)
            lines, raws = [], []
    _insert(con, table, lines, raws)


def _csv_records(source: InputFile, last_line: int | None = None):
    """(line_no, raw JSON text) per CSV row, or (line_no, FileProblem) for a bad row."""
    model = MODELS[source.kind]
    try:
        with source.path.open(newline="", encoding="utf-8-sig") as handle:
            oversized: dict[int, tuple[int, str]] = {}
            reader = csv.reader(_bounded_lines(handle, oversized))
            header = next(reader, None)
            if header is None:
                return
            if header == [_OVERSIZED]:
                raise UserError(
                    f"{source.path}: line 1: the header is over {MAX_RECORD_BYTES} bytes; "
                    "nothing of this file was read"
                )
            header = [name.strip() for name in header]
            twice = sorted({name for name in header if header.count(name) > 1})
            if twice:
                raise UserError(
                    f"{source.path}: line 1: column {', '.join(twice)} appears more than once "
                    "in the header (which value is meant?); nothing of this file was read"
                )
            start = reader.line_num
            for row in reader:
                line_no, start = start + 1, reader.line_num
                if last_line is not None and line_no > last_line:
                    return
                if row == [_OVERSIZED]:
                    yield line_no, _too_large(line_no, *oversized.pop(line_no))
                    continue
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) != len(header):
                    yield (
                        line_no,
                        FileProblem(
                            line_no,
                            "csv_columns",
                            f"row has {len(row)} columns, the header has {len(header)}",
                            json.dumps(row, ensure_ascii=False),
                        ),
                    )
                    continue
                record = coerce_text_row(model, dict(zip(header, row, strict=True)))
                yield line_no, _record_json(record)
    except UnicodeDecodeError as exc:
        yield (
            None,
            FileProblem(
                None,
                "invalid_utf8",
                f"file is not valid UTF-8 (byte {exc.start}); no record of this file was loaded",
            ),
        )
    except csv.Error as exc:
        raise UserError(f"{source.path}: unreadable CSV ({exc})") from None


# Stands in for a CSV line over MAX_RECORD_BYTES, which is skipped unread: the csv module then
# sees a one-cell row in its place (line numbers stay right) instead of holding the whole line.
_OVERSIZED = "\x00itrack: line too large\x00"


def _bounded_lines(handle, oversized: dict[int, tuple[int, str]]):
    """The physical lines of a CSV text file, each held only up to MAX_RECORD_BYTES characters;
    a longer line is read to its end in bounded pieces, replaced by _OVERSIZED, and its size
    noted in `oversized` by line number."""
    line_no = 0
    while line := handle.readline(MAX_RECORD_BYTES + 1):
        line_no += 1
        if len(line) <= MAX_RECORD_BYTES or line.endswith("\n"):
            yield line
            continue
        size, preview = len(line.encode("utf-8")), line[:200]
        while more := handle.readline(1 << 20):
            size += len(more.encode("utf-8"))
            if more.endswith("\n"):
                break
        oversized[line_no] = (size, preview)
        yield _OVERSIZED + "\n"


def _too_large(position: int, size: int, preview: str | None, unit: str = "line") -> FileProblem:
    """A line (or JSON element: `unit`) over MAX_RECORD_BYTES, quarantined with its first
    characters only (`preview`; none for a JSON element, read in pieces)."""
    return FileProblem(
        position,
        "record_too_large",
        f"{unit} is {size} bytes; a record may take at most {MAX_RECORD_BYTES} bytes",
        None if preview is None else preview + "...",
    )


def _land_parquet(con: duckdb.DuckDBPyConnection, source: InputFile, table: str) -> None:
    """Each row as its JSON object, a null cell left out (a columnar file's absent field).

    A row over MAX_RECORD_BYTES as JSON is quarantined, as a line of the other formats is, with
    its first characters only: it is never built whole, nor parsed with the rest (which would
    take several times its size in memory). One projection straight over the file (DuckDB runs
    out of memory filtering such a row before it is stored)."""
    path = str(source.path)
    try:
        types = _parquet_types(con, path)
        preview = _parquet_row_json(types, 200)
        con.execute(
            f"""create or replace temp table parquet_rows as
            select row_number() over () as line_no, {_parquet_row_size(types)} as size,
                   case when size > {MAX_RECORD_BYTES} then left({preview}, 200)
                        else {_parquet_row_json(types)} end as raw
            from read_parquet(?, {PARQUET_OPTIONS}) as t""",
            [path],
        )
        too_large = con.execute(
            f"""select line_no, size, raw from parquet_rows where size > {MAX_RECORD_BYTES}
            order by line_no"""
        ).fetchall()
        con.execute(
            f"""insert into {table}
            select line_no, raw from parquet_rows where size <= {MAX_RECORD_BYTES}"""
        )
        con.execute("drop table parquet_rows")
    except duckdb.Error as exc:
        raise UserError(f"{source.path}: unreadable Parquet ({str(exc).splitlines()[0]})") from None
    for line_no, size, preview in too_large:
        source.problems.append(_too_large(line_no, size, preview))


def _insert(con: duckdb.DuckDBPyConnection, table: str, lines: list[int], raws: list[str]) -> None:
    if lines:
        insert_columns(con, table, {"line_no": lines, "raw": raws})


def insert_columns(con: duckdb.DuckDBPyConnection, table: str, columns: dict[str, list]) -> None:
    """Insert rows given as equally long columns, by column name, through one Arrow table.
    Arrow is imported here, not at the top: a no-op build, which inserts nothing, never loads
    it (0.08 s)."""
    import pyarrow as pa

    arrow_batch = pa.table(columns)  # noqa: F841 - read by DuckDB's replacement scan
    con.execute(f"insert into {table} by name select * from arrow_batch")


def field_base(model: type[Record], name: str) -> type | None:
    """The non-None type of a field, looking through Annotated and Optional."""
    annotation = model.model_fields[name].annotation
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
        else:
            return annotation


def _readable_int(text: str) -> bool:
    """Within Python's limit on integer digits (longer stays text and is refused as wrong_type)."""
    limit = sys.get_int_max_str_digits()
    return limit == 0 or len(text.strip().lstrip("-")) <= limit


def coerce_text_row(model: type[Record], row: dict[str, str]) -> dict[str, object]:
    """Type the text cells of a CSV row by the contract: integers, lists and objects parsed,
    empty cells absent; a process's `stages` cell holding a JSON list is its inline stages (it
    stayed text, and the process was refused as `unknown_field`, in CSV only). Anything that
    does not parse stays text and fails validation."""
    record: dict[str, object] = {}
    for key, text in row.items():
        if text == "":
            continue
        base = field_base(model, key) if key in model.model_fields else None
        origin = typing.get_origin(base)
        if base is int and _INTEGER.fullmatch(text.strip()) and _readable_int(text):
            record[key] = int(text)
        elif origin is list:
            record[key] = _parse_list(text)
        elif isinstance(base, type) and issubclass(base, Record) and text.lstrip().startswith("{"):
            record[key] = _json_or_text(text)
        elif key == "stages" and model is MODELS["processes"] and text.lstrip().startswith("["):
            record[key] = _json_or_text(text)  # inline stages, as in a JSON record
        else:
            record[key] = text
    return record


def _parse_list(text: str) -> object:
    if text.lstrip().startswith("["):
        return _json_or_text(text)
    return [part.strip() for part in text.split(";") if part.strip()]


def _json_or_text(text: str) -> object:
    try:
        return json.loads(text, object_pairs_hook=refuse_duplicate_keys)
    except DuplicateKey:
        return _Verbatim(text)
    except (ValueError, RecursionError):  # not JSON (or a number too long to read, or nested
        return text  # too deeply to read): the text fails validation


@dataclass(frozen=True)
class _Verbatim:
    """A cell's JSON as written, for one that holds a key twice: reading it would keep the
    last value and hide the ambiguity, so the record's text carries it as it is and the
    contract refuses it (`duplicate_key`), as in a JSON record."""

    text: str


def _record_json(record: dict[str, object]) -> str:
    """A CSV row's record as the JSON text the line reader lands (`_storable_json`), its
    `_Verbatim` cells as written."""
    if not any(isinstance(v, _Verbatim) for v in record.values()):
        return _storable_json(record)
    members = (
        f"{_storable_json(key)}: {v.text if isinstance(v, _Verbatim) else _storable_json(v)}"
        for key, v in record.items()
    )
    return "{" + ", ".join(members) + "}"  # json.dumps's own spelling


def _storable_json(value: object) -> str:
    """`value` as JSON text, lone surrogates (a `\\ud800` escape read) kept as escapes: no
    UTF-8 store can hold them, and the checks refuse them."""
    raw = json.dumps(value, ensure_ascii=False)
    return raw if raw == storable(raw) else json.dumps(value)
