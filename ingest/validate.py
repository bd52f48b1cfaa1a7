"""Bulk validation derived from the contract.

Per-row pydantic is far too slow for nightly volumes, so the contract's field types and
constraints are compiled into SQL that DuckDB evaluates over all landed rows at once. The SQL
may only be *stricter* than pydantic: a row it accepts is valid; a row it does not accept goes to
pydantic, which either accepts it (an exotic but valid spelling) or explains the rejection.
A field whose rule the compiler does not know (a nested model, a custom validator) is therefore
fast-accepted only when absent, so new rules stay safe by construction.
"""

from __future__ import annotations

import datetime as dt
import json
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from uuid import UUID

import annotated_types as at
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic.functional_validators import AfterValidator, BeforeValidator

from ingest import contract
from ingest.contract import EARLIEST, ISO_DATETIME_PATTERN, LATEST, RATING_FIELDS, Record, to_row
from ingest.errors import DuplicateKey, json_reason, refuse_duplicate_keys
from ingest.field_errors import field_errors
from ingest.sqltext import sql_text
from ingest.text import NAME_FORBIDDEN_SQL

_UUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
# Python's str.strip() whitespace: a blank name is refused by `_not_blank`.
_NOT_WHITESPACE = (
    r"[^\s\x0b\x0c\x1c-\x1f\x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}"
    r"\x{202f}\x{205f}\x{3000}]"
)


# SQL mirrors of the contract's reusable validators, keyed by the function itself.
_VALIDATOR_SQL: dict[Any, str] = {
    contract._not_blank: f"regexp_matches({{s}}, '{_NOT_WHITESPACE}')",
    contract._no_control_chars: f"not regexp_matches({{s}}, '{NAME_FORBIDDEN_SQL}')",
    contract._no_nul: "not contains({s}, chr(0))",
    contract.naive_utc: "true",  # the range check below covers its overflow
    # now() is the transaction's start, before pydantic's clock: the SQL is the stricter
    contract._not_in_future: (
        "try_cast({s} as timestamptz) <= now() + interval "
        f"'{int(contract.FUTURE_TOLERANCE.total_seconds())} seconds'"
    ),
    contract._business_range: (
        f"try_cast({{s}} as timestamptz) >= '{EARLIEST.isoformat()}+00:00'::timestamptz"
        f" and try_cast({{s}} as timestamptz) < '{LATEST.isoformat()}+00:00'::timestamptz"
    ),
    # a date's text is checked as YYYY-MM-DD first: as text, the order is the dates'
    contract._business_date: (
        f"{{s}} >= '{EARLIEST.date().isoformat()}' and {{s}} < '{LATEST.date().isoformat()}'"
    ),
    contract._amount_bound: f"try_cast({{s}} as double) <= {contract.MAX_AMOUNT}",
    contract.OfferDetails._iso_currency.__func__: "{s} in ("
    + ", ".join(sql_text(c) for c in sorted(contract.ISO_4217))
    + ")",
}


def _fill(template: str, **subs: str) -> str:
    """Substitute {t}/{s}/{v}; not str.format, since regexes in the SQL hold braces."""
    for key, value in subs.items():
        template = template.replace("{" + key + "}", value)
    return template


@dataclass(frozen=True)
class FieldSQL:
    name: str
    required: bool  # must be present
    nullable: bool  # JSON null allowed
    # SQL over {t} (json type), {s} (text), {v} (json token) and {c} (the cast below); None =
    # a rule the compiler does not know (the field is then fast-accepted only when absent)
    check: str | None
    typed: str  # SQL giving the column value for a fast-accepted row, over {s}, {v} and {c}
    cast: str | None = None  # computed once per row over {t}, {s} and {v}: a timestamp's value
    nested: str | None = None  # a nested model's struct type: {o} its fields, {k} its keys
    # a list of strings given as a native VARCHAR[] {l} (a Parquet list column), not a token:
    # the check and typed value over it
    list_check: str | None = None
    list_typed: str | None = None


def _unwrap(annotation: Any) -> tuple[Any, list[Any], bool]:
    """Base type, flattened constraint metadata, and whether None is allowed."""
    metadata: list[Any] = []
    nullable = False
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation, *extra = typing.get_args(annotation)
            for item in extra:
                metadata.extend(item.metadata if isinstance(item, FieldInfo) else [item])
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            nullable = nullable or len(args) < len(typing.get_args(annotation))
            if len(args) != 1:
                return annotation, metadata, nullable
            annotation = args[0]
        else:
            return annotation, metadata, nullable


def _is_amount(base: Any) -> bool:
    """`strict int | strict finite float` (the contract's Amount): JSON numbers, kept as spelled."""
    if typing.get_origin(base) not in (typing.Union, types.UnionType):
        return False
    parts = []
    for arg in typing.get_args(base):
        inner, meta, _ = _unwrap(arg)
        names = {type(m).__name__ for m in meta}
        finite = any(getattr(m, "allow_inf_nan", True) is False for m in meta)
        parts.append((inner, "Strict" in names, finite or inner is int))
    return sorted(parts, key=str) == sorted([(int, True, True), (float, True, True)], key=str)


# Amount tokens fast-accepted: those whose canonical spelling (pydantic's JSON output) is the
# token itself: plain unsigned integers, and decimals in fixed notation with at most 15
# significant digits (Python's repr of such a float is the same text). Others go to pydantic.
_AMOUNT_CHECK = (
    "(({t} = 'UBIGINT' and regexp_full_match({s}, '[0-9]+'))"
    " or ({t} = 'DOUBLE' and regexp_full_match({s}, '(0|[1-9][0-9]{0,14})\\.[0-9]{1,15}')"
    " and length(replace(ltrim({s}, '0'), '.', '')) <= 15"
    " and not starts_with({s}, '0.0000')))"
)


def _scalar_check(base: Any, metadata: list[Any]) -> tuple[str | None, str, str | None]:
    """(check over {t}/{s}/{c}, typed value over {s}/{c}, cast over {s}) for one scalar type
    with its constraints."""
    parts: list[str] = []
    for item in metadata:
        if isinstance(item, (AfterValidator, BeforeValidator)):
            if (base, item.func) in (
                (dt.datetime, contract._iso_datetime),
                (dt.date, contract._iso_date),
            ):
                continue  # the type's own SQL check below requires the ISO text
            sql = _VALIDATOR_SQL.get(item.func)
            if sql is None:
                return None, "", None
            parts.append(sql)
        elif isinstance(item, at.Ge):
            parts.append(f"try_cast({{s}} as double) >= {item.ge}")
        elif isinstance(item, at.Le):
            parts.append(f"try_cast({{s}} as double) <= {item.le}")
        elif isinstance(item, at.MinLen):
            parts.append(f"length({{s}}) >= {item.min_length}")
        elif isinstance(item, at.MaxLen):
            parts.append(f"length({{s}}) <= {item.max_length}")
        elif hasattr(item, "min_length") and hasattr(item, "pattern"):  # StringConstraints
            if item.min_length is not None:
                parts.append(f"length({{s}}) >= {item.min_length}")
            if item.max_length is not None:
                parts.append(f"length({{s}}) <= {item.max_length}")
            if item.pattern is not None:
                parts.append(f"regexp_full_match({{s}}, {sql_text(item.pattern)})")
        elif type(item).__name__ == "Strict":
            continue
        else:
            return None, "", None
    strict = any(type(m).__name__ == "Strict" for m in metadata)
    cast = None
    if base is str:
        head, typed = "{t} = 'VARCHAR'", "{s}"
    elif base is int and strict:
        head, typed = "{t} in ('BIGINT', 'UBIGINT')", "try_cast({s} as integer)"
    elif isinstance(base, type) and issubclass(base, StrEnum):
        values = ", ".join(sql_text(m.value) for m in base)
        head, typed = f"{{t}} = 'VARCHAR' and {{s}} in ({values})", "{s}"
    elif base is dt.datetime:
        head = (
            f"{{t}} = 'VARCHAR' and regexp_full_match({{s}}, {sql_text(ISO_DATETIME_PATTERN)})"
            " and {c} is not null"
        )
        cast, typed = "try_cast({s} as timestamptz)", "{c}::timestamp"
    elif base is dt.date:  # offer dates: a plain ISO date from year 1 on (Python's range)
        head = (
            "{t} = 'VARCHAR' and regexp_full_match({s}, '[0-9]{4}-[0-9]{2}-[0-9]{2}')"
            " and {s} >= '0001-01-01' and try_cast({s} as date) is not null"
        )
        typed = "{s}"
    elif base is UUID:
        head = f"{{t}} = 'VARCHAR' and regexp_full_match({{s}}, {sql_text(_UUID)})"
        typed = "try_cast({s} as uuid)"
    elif _is_amount(base):
        head, typed = _AMOUNT_CHECK, "{s}"
    else:
        return None, "", None
    if cast:  # validators over the same value use the one cast
        parts = [part.replace(cast, "{c}") for part in parts]
    return " and ".join([head, *parts]), typed, cast


def _field_validator_sql(model: type[BaseModel], name: str) -> list[str] | None:
    """SQL for the model's `@field_validator`s of field `name`; None if one is unknown."""
    parts = []
    for decorator in model.__pydantic_decorators__.field_validators.values():
        if name in decorator.info.fields:
            sql = _VALIDATOR_SQL.get(getattr(decorator.func, "__func__", decorator.func))
            if sql is None:
                return None
            parts.append(sql)
    return parts


def _field_sql(model: type[BaseModel], name: str, info: FieldInfo) -> FieldSQL:
    base, metadata, nullable = _unwrap(info.annotation)
    metadata = [*info.metadata, *metadata]
    required = info.is_required()
    extra = _field_validator_sql(model, name)
    if extra is None:
        return FieldSQL(name, required, nullable, None, "null")
    if typing.get_origin(base) is list:
        (item,) = typing.get_args(base)
        item_base, item_meta, _ = _unwrap(item)
        check, _, _ = _scalar_check(item_base, item_meta)
        typed = "coalesce(try(from_json({v}, '[\"VARCHAR\"]')), [])::varchar[]"
        if check is None:
            return FieldSQL(name, required, nullable, None, typed)
        if item_base is not str:
            # from_json reads a JSON null element as SQL null, which no check may let through
            # (its checks would be null, and the list's `true`): pydantic refuses it
            element = _fill(check, t="json_type(x)", s="(x->>'$')")
            token_check = (
                "{t} = 'ARRAY' and coalesce(list_bool_and(list_transform("
                f"from_json({{v}}, '[\"JSON\"]'), lambda x: x is not null and {element})), true)"
            )
            return FieldSQL(name, required, nullable, token_check, typed)
        # A list of strings is checked over its elements' text, as a native list is (Parquet):
        # the token is read once as text (`cast`, kept as {c}) and once for the elements' JSON
        # types, which must all be strings (as text a number, a null or a list reads as its
        # JSON). Cheaper than each element's token parsed for its type and again for its text.
        native = _fill(check, t="'VARCHAR'", s="x")
        list_check = (
            "coalesce(list_bool_and(list_transform({l}, lambda x: x is not null"
            f" and {native})), true)"
        )
        strings = (
            "{t} = 'ARRAY' and coalesce(list_bool_and(list_transform("
            "json_type({v}, '$[*]'), lambda y: y = 'VARCHAR')), true)"
        )
        return FieldSQL(
            name,
            required,
            nullable,
            f"{strings} and {_fill(list_check, l='{c}')}",
            "coalesce({c}, [])::varchar[]",
            cast="case when {t} = 'ARRAY' then from_json({v}, '[\"VARCHAR\"]') end",
            list_check=list_check,
            list_typed="coalesce({l}, [])::varchar[]",
        )
    if isinstance(base, type) and issubclass(base, Record):
        check, typed, struct = _nested_sql(base)
        return FieldSQL(name, required, nullable, check, typed, nested=struct)
    check, typed, cast = _scalar_check(base, metadata)
    if check is not None and extra:
        check = " and ".join([check, *extra])
    if isinstance(info.default, StrEnum):
        typed = f"coalesce({typed}, {sql_text(info.default.value)})" if check else typed
    return FieldSQL(name, required, nullable, check, typed or "null", cast)


def _json_type(v: str) -> str:
    """json_type of a JSON token, without parsing the (common) string token: DuckDB writes its
    tokens without leading space, so one starting with a quote is a string."""
    return f"case when starts_with({v}, '\"') then 'VARCHAR' else json_type({v}) end"


def _json_text(v: str) -> str:
    """`v->>'$'` (a string token's text, any other token's JSON) without parsing a string token
    that holds no escape: its only quotes are the two around it."""
    return (
        f"case when starts_with({v}, '\"') and not contains({v}, '\\') "
        f"then replace({v}::varchar, '\"', '') else ({v}->>'$') end"
    )


def maybe_trailing_comma(text: str) -> str:
    """SQL: JSON text `text` may hold a comma before a closing bracket (`[1,]`, `{"a": 1,}`),
    which DuckDB's JSON functions read and JSON does not. Such a record goes to Python's
    parser, which refuses it as malformed (a string merely holding `,]` is accepted there)."""
    return f"regexp_matches({text}, ',[ \\t\\n\\r]*[\\]}}]')"


def _only_known_keys_once(keys: str, names: list[str]) -> str:
    """The key list holds only these names, none twice: as many keys as names it contains
    (an unknown or repeated key makes the list longer). Cheaper than filtering the list with
    a lambda and comparing it with its distinct values."""
    found = " + ".join(f"list_contains({keys}, {sql_text(n)})::int" for n in names)
    return f"len({keys}) = {found}"


def _nested_sql(model: type[Record]) -> tuple[str | None, str, str | None]:
    """(check, typed) for a nested model held as a JSON object token {v}: its own fields checked
    like a record's, and the value rebuilt as pydantic writes it (`model_dump_json(exclude_none)`:
    fields in model order, no spaces), so fast and slow rows store the same text."""
    fields = [_field_sql(model, n, i) for n, i in model.model_fields.items()]
    if any(f.check is None or f.cast is not None for f in fields):
        return None, "null", None
    struct = "{" + ", ".join(f'"{f.name}": "JSON"' for f in fields) + "}"
    obj = "{o}"
    checks = ["{t} = 'OBJECT'", _only_known_keys_once("{k}", [f.name for f in fields])]
    pieces = []
    for f in fields:
        token = f"{obj}.{f.name}"
        text = f"({_json_text(token)})"
        value = _fill(f.check, t=_json_type(token), s=text, v=token)
        if f.required:
            checks.append(f"({token} is not null and {value})")
        else:
            checks.append(f"({token} is null or {value})")
        spelled = text
        if "'VARCHAR'" in f.check:  # text with nothing to escape, spelled in quotes
            checks.append(f"({token} is null or not regexp_matches({text}, '[\"\\\\\x00-\x1f]'))")
            spelled = f"'\"' || {text} || '\"'"
        pieces.append(f"'\"{f.name}\":' || {spelled}")
    for rule in model.sql_checks:
        typed = {f.name: f"try_cast({_json_text(f'{obj}.{f.name}')} as date)" for f in fields}
        checks.append(f"coalesce({rule.format(**typed)}, true)")
    check = "coalesce(" + " and ".join(checks) + ", false)"
    # JSON, the raw table's type (the checked rows become the staged rows as they are)
    typed = (
        "(case when {v} is not null then '{' || concat_ws(',', "
        + ", ".join(pieces)
        + ") || '}' end)::json"
    )
    return check, typed, struct


@dataclass(frozen=True)
class CompiledModel:
    model: type[Record]
    fields: tuple[FieldSQL, ...]

    def struct(self) -> str:
        """The DuckDB type reading each contract field as one raw JSON token."""
        return "{" + ", ".join(f'"{f.name}": "JSON"' for f in self.fields) + "}"

    def parse_sql(self, source: str) -> str:
        """`(rec, file_path, line_no, keys, v_<field>...)` from `source (rec, file_path, line_no,
        raw)`: the slow path's one parse for the fields and one for the key list."""
        fragments = ", ".join(f"r.{f.name} as v_{f.name}" for f in self.fields)
        return f"""
            select rec, file_path, line_no,
                   keys,  -- a repeated or unknown key: not ok (`checked_sql`), pydantic decides
                   {fragments}
            from (select rec, file_path, line_no, try(from_json(raw, '{self.struct()}')) as r,
                         case when not {maybe_trailing_comma("raw")}
                              then try(json_keys(raw)) end as keys
                  from {source})"""

    def field(self, name: str) -> FieldSQL:
        (found,) = (f for f in self.fields if f.name == name)
        return found

    def text_only(self, name: str) -> bool:
        """Whether field `name` is checked and typed from its JSON type and text alone, never
        its token: a reader that knows both without a token (a typed column) may give them to
        `checked_sql`."""
        f = self.field(name)
        rules = (f.check or "") + f.typed
        return f.check is not None and not f.nested and "{v}" not in rules

    def checked_sql(self, source: str, given: frozenset[str] = frozenset()) -> str:
        """Over `source (rec, file_path, line_no, keys, v_<field>...)` (one JSON token per
        field): each field's type, text and cast computed once, then `rec, file_path, line_no,
        ok` and the typed columns (null where not ok).

        A reader of typed columns (CSV, Parquet) gives some fields' values instead of a token
        built and parsed back: for a field in `given`, `v_<field>` is anything non-null exactly
        when the field is present, and `source` also gives, for a `text_only` field, the JSON
        type `t_<field>` and text `s_<field>` its token would have; for a list of strings (a
        field with a `list_check`), the native VARCHAR[] `l_<field>`."""
        tokens, casts = [], []
        for f in self.fields:
            v = f"v_{f.name}"
            if f.name in given and f.list_check:
                tokens += [v, f"l_{f.name}"]
            elif f.name in given:
                assert self.text_only(f.name), f.name
                tokens += [v, f"t_{f.name}", f"s_{f.name}"]
            else:
                tokens += [v, f"{_json_type(v)} as t_{f.name}", f"{_json_text(v)} as s_{f.name}"]
            if f.cast and not (f.name in given and f.list_check):  # (a native list: no cast)
                subs = {x: f"{x}_{f.name}" for x in ("t", "s", "v")}
                casts.append(f"{_fill(f.cast, **subs)} as c_{f.name}")
            if f.nested:
                obj = f"json_type({v}) = 'OBJECT'"
                tokens += [
                    f"case when {obj} then from_json({v}, '{f.nested}') end as o_{f.name}",
                    f"case when {obj} then json_keys({v}) end as k_{f.name}",
                ]
        typed = ",\n".join(
            f"case when ok then {expr} end as {name}" for name, expr in self._typed(given)
        )
        return f"""
            select rec, file_path, line_no, ok, has_stages, {typed}
            from (select *, {self._ok_expr(given)} as ok
                  from (select *{"".join(", " + c for c in casts)}
                        from (select rec, file_path, line_no, keys,
                                     coalesce(list_contains(keys, 'stages'), false) as has_stages,
                                     {", ".join(tokens)}
                              from {source})))"""

    def _rules(self, f: FieldSQL, given: frozenset[str]) -> tuple[str | None, str]:
        """(check, typed value) of field `f`, filled in: over its given native list, or over
        its type, text and token."""
        if f.name in given and f.list_check and f.list_typed:
            check, typed = f.list_check, f.list_typed
        else:
            check, typed = f.check, f.typed
        names = ("t", "s", "v", "c", "o", "k", "l")
        subs = {x: f"{x}_{f.name}" for x in names}
        return (_fill(check, **subs) if check else None), _fill(typed, **subs)

    def _ok_expr(self, given: frozenset[str]) -> str:
        checks = [
            "keys is not null",
            # no unknown key and none twice (pydantic explains either)
            _only_known_keys_once("keys", [f.name for f in self.fields]),
        ]
        for f in self.fields:
            v = f"v_{f.name}"
            value = self._rules(f, given)[0] or "false"
            if f.required:
                checks.append(f"({v} is not null and {value})")
            elif f.nullable:  # absent or JSON null both read as SQL null here
                checks.append(f"({v} is null or {value})")
            else:  # may be absent (it has a default) but not null
                checks.append(
                    f"(({v} is null and not list_contains(keys, {sql_text(f.name)}))"
                    f" or ({v} is not null and {value}))"
                )
        for rule in self.model.sql_checks:
            typed = {
                f.name: f"c_{f.name}" if f.cast else f"try_cast(s_{f.name} as timestamptz)"
                for f in self.fields
            }
            checks.append(f"coalesce({rule.format(**typed)}, true)")
        return "coalesce(" + "\n and ".join(checks) + ", false)"

    def _typed(self, given: frozenset[str]) -> list[tuple[str, str]]:
        """The table's columns for fast-accepted rows (defaults applied, timestamps naive UTC)."""
        cols = []
        for f in self.fields:
            expr = self._rules(f, given)[1]
            if f.name == "updated_at":
                expr = f"coalesce({expr}, c_created_at::timestamp)"
            cols.append((f.name, expr))
        return cols

    def column_names(self) -> str:
        return ", ".join(f.name for f in self.fields)


def compile_model(model: type[Record]) -> CompiledModel:
    return CompiledModel(
        model, tuple(_field_sql(model, n, i) for n, i in model.model_fields.items())
    )


# ---------------------------------------------------------------- explaining failed rows


@dataclass(frozen=True)
class Rejection:
    code: str
    field: str | None
    message: str
    record_id: str | None = None


def _code_for(error: Mapping[str, Any], field: str | None) -> str:
    kind = error["type"]
    if kind == "missing":
        return "missing_field"
    if kind == "extra_forbidden":
        return "unknown_field"
    if field and field.startswith("offer_details"):
        return "invalid_offer"
    if field in RATING_FIELDS:
        return "invalid_rating"
    if kind == "enum":
        return "invalid_enum"
    if kind.startswith("uuid"):
        return "invalid_uuid"
    if kind.startswith(("datetime", "date")) or "ISO 8601" in error.get("msg", ""):
        return "invalid_date"
    if "control characters" in error.get("msg", ""):
        return "control_character"
    if "date range" in error.get("msg", ""):
        return "invalid_date"
    if contract.FUTURE_MESSAGE in error.get("msg", ""):
        return "future_date"
    if "before" in error.get("msg", ""):
        return "date_order"
    if kind == "string_too_short" or "blank" in error.get("msg", ""):
        return "empty_value"
    if kind.endswith("_type") or kind.endswith("_parsing"):
        return "wrong_type"
    return "invalid_value"


def explain(model: type[Record], raw: str) -> tuple[dict[str, Any] | None, Rejection | None]:
    """Validate one raw JSON record with pydantic: (row, None) if valid, else (None, why)."""
    try:
        data = json.loads(raw, object_pairs_hook=refuse_duplicate_keys)
    except DuplicateKey as exc:
        return None, Rejection(
            "duplicate_key",
            exc.key,
            f"key '{exc.key}' appears more than once in the record",
            _unambiguous_id(raw),
        )
    except RecursionError:
        return None, Rejection("too_deeply_nested", None, "the record is nested too deeply to read")
    except ValueError as exc:  # malformed, or a number too long to read
        return None, Rejection("malformed_json", None, f"malformed JSON ({json_reason(exc)})")
    if not isinstance(data, dict):
        return None, Rejection(
            "not_an_object", None, f"expected a JSON object, got {type(data).__name__}"
        )
    record_id = data.get("id") if isinstance(data.get("id"), str) else None
    try:
        record = model.model_validate(data)
    except ValidationError as exc:
        first = field_errors(exc.errors(include_url=False), model)[0]
        error, field = first.error, first.field or None
        # a missing field has no value, and a rule over the whole record (dates out of order)
        # says what it saw: "(got an object)" after either said nothing
        whole = error["type"] == "value_error" and isinstance(error.get("input"), dict)
        shown = (
            "" if error["type"] == "missing" or whole else f" (got {_short(error.get('input'))})"
        )
        where = f"field '{field}': " if field else ""
        return None, Rejection(
            _code_for(error, field), field, f"{where}{first.message}{shown}", record_id
        )
    return to_row(record), None


def _unambiguous_id(raw: str) -> str | None:
    """The id of a record refused for a key given twice, when its own `id` is given once (as
    text): the reject names its record, and the run that loads the corrected copy resolves it.
    An `id` given twice names no record (which one is meant?)."""
    objects: list[list[tuple[str, Any]]] = []

    def keep(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        objects.append(pairs)  # the record itself closes last
        return dict(pairs)

    data = json.loads(raw, object_pairs_hook=keep)
    ids = [value for key, value in objects[-1] if key == "id"] if isinstance(data, dict) else []
    return ids[0] if len(ids) == 1 and isinstance(ids[0], str) else None


def _short(value: Any) -> str:
    text = (
        json.dumps(value, ensure_ascii=False, default=str)
        if not isinstance(value, dict)
        else "an object"
    )
    return text if len(text) <= 60 else text[:57] + "..."
