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
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from uuid import UUID

import annotated_types as at
from pydantic import ValidationError
from pydantic.fields import FieldInfo
from pydantic.functional_validators import AfterValidator, BeforeValidator

from ingest import contract
from ingest.contract import (
    EARLIEST,
    ISO_DATETIME_PATTERN,
    LATEST,
    NAME_FORBIDDEN_SQL,
    RATING_FIELDS,
    Record,
    to_row,
)

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
    contract.naive_utc: "true",  # the range check below covers its overflow
    contract._business_range: (
        f"try_cast({{s}} as timestamptz) >= '{EARLIEST.isoformat()}+00:00'::timestamptz"
        f" and try_cast({{s}} as timestamptz) < '{LATEST.isoformat()}+00:00'::timestamptz"
    ),
}


def _fill(template: str, **subs: str) -> str:
    """Substitute {t}/{s}/{v}; not str.format, since regexes in the SQL hold braces."""
    for key, value in subs.items():
        template = template.replace("{" + key + "}", value)
    return template


def _q(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True)
class FieldSQL:
    name: str
    required: bool  # must be present
    nullable: bool  # JSON null allowed
    check: str | None  # SQL over {t} (json type) and {s} (text) and {v} (json); None = unknown
    typed: str  # SQL giving the column value for a fast-accepted row, over {s} and {v}


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


def _scalar_check(base: Any, metadata: list[Any]) -> tuple[str | None, str]:
    """(check over {t}/{s}, typed value over {s}) for one scalar type with its constraints."""
    parts: list[str] = []
    for item in metadata:
        if isinstance(item, (AfterValidator, BeforeValidator)):
            if base is dt.datetime and item.func is contract._iso_datetime:
                continue
            sql = _VALIDATOR_SQL.get(item.func)
            if sql is None:
                return None, ""
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
                parts.append(f"regexp_full_match({{s}}, {_q(item.pattern)})")
        elif type(item).__name__ == "Strict":
            continue
        else:
            return None, ""
    strict = any(type(m).__name__ == "Strict" for m in metadata)
    if base is str:
        head, typed = "{t} = 'VARCHAR'", "{s}"
    elif base is int and strict:
        head, typed = "{t} in ('BIGINT', 'UBIGINT')", "{s}::integer"
    elif isinstance(base, type) and issubclass(base, StrEnum):
        values = ", ".join(_q(m.value) for m in base)
        head, typed = f"{{t}} = 'VARCHAR' and {{s}} in ({values})", "{s}"
    elif base is dt.datetime:
        head = (
            f"{{t}} = 'VARCHAR' and regexp_full_match({{s}}, {_q(ISO_DATETIME_PATTERN)})"
            " and try_cast({s} as timestamptz) is not null"
        )
        typed = "{s}::timestamptz::timestamp"
    elif base is UUID:
        head, typed = f"{{t}} = 'VARCHAR' and regexp_full_match({{s}}, {_q(_UUID)})", "{s}::uuid"
    else:
        return None, ""
    return " and ".join([head, *parts]), typed


def _field_sql(name: str, info: FieldInfo) -> FieldSQL:
    base, metadata, nullable = _unwrap(info.annotation)
    metadata = [*info.metadata, *metadata]
    required = info.is_required()
    if typing.get_origin(base) is list:
        (item,) = typing.get_args(base)
        item_base, item_meta, _ = _unwrap(item)
        check, _ = _scalar_check(item_base, item_meta)
        if check is not None:
            element = _fill(check, t="json_type(x)", s="(x->>'$')")
            check = (
                "{t} = 'ARRAY' and coalesce(list_bool_and(list_transform("
                f"from_json({{v}}, '[\"JSON\"]'), lambda x: {element})), true)"
            )
        typed = "coalesce(from_json({v}, '[\"VARCHAR\"]'), [])::varchar[]"
        return FieldSQL(name, required, nullable, check, typed)
    check, typed = _scalar_check(base, metadata)
    if isinstance(info.default, StrEnum):
        typed = f"coalesce({typed}, {_q(info.default.value)})" if check else typed
    return FieldSQL(name, required, nullable, check, typed or "null")


@dataclass(frozen=True)
class CompiledModel:
    model: type[Record]
    fields: tuple[FieldSQL, ...]

    def checked_sql(self, source: str) -> str:
        """Parse each row of `source (rec, raw)` twice in all (fields, keys), then check the
        small per-field fragments: `rec, ok, v_<field>...`."""
        struct = "{" + ", ".join(f'"{f.name}": "JSON"' for f in self.fields) + "}"
        fragments = ",\n".join(f"r.{f.name} as v_{f.name}" for f in self.fields)
        return f"""
            select rec, {self._ok_expr()} as ok, * exclude (rec, keys)
            from (select rec, keys, {fragments}
                  from (select rec, try(from_json(raw, '{struct}')) as r,
                               try(json_keys(raw)) as keys
                        from {source}))"""

    def _ok_expr(self) -> str:
        allowed = ", ".join(_q(f.name) for f in self.fields)
        checks = ["keys is not null", f"list_has_all([{allowed}], keys)"]
        for f in self.fields:
            v = f"v_{f.name}"
            value = (
                _fill(f.check, t=f"json_type({v})", s=f"({v}->>'$')", v=v) if f.check else "false"
            )
            if f.required:
                checks.append(f"({v} is not null and {value})")
            elif f.nullable:  # absent or JSON null both read as SQL null here
                checks.append(f"({v} is null or {value})")
            else:  # may be absent (it has a default) but not null
                checks.append(
                    f"(({v} is null and not list_contains(keys, {_q(f.name)}))"
                    f" or ({v} is not null and {value}))"
                )
        for rule in self.model.sql_checks:
            typed = {f.name: f"try_cast(v_{f.name}->>'$' as timestamptz)" for f in self.fields}
            checks.append(f"coalesce({rule.format(**typed)}, true)")
        return "coalesce(" + "\n and ".join(checks) + ", false)"

    def typed_columns(self) -> str:
        """The table's columns for fast-accepted rows (defaults applied, timestamps naive UTC)."""
        cols = []
        for f in self.fields:
            expr = _fill(f.typed, s=f"(v_{f.name}->>'$')", v=f"v_{f.name}")
            if f.name == "updated_at":
                expr = f"coalesce({expr}, (v_created_at->>'$')::timestamptz::timestamp)"
            cols.append(f"{expr} as {f.name}")
        return ",\n".join(cols)


def compile_model(model: type[Record]) -> CompiledModel:
    return CompiledModel(model, tuple(_field_sql(n, i) for n, i in model.model_fields.items()))


# ---------------------------------------------------------------- explaining failed rows


@dataclass(frozen=True)
class Rejection:
    code: str
    field: str | None
    message: str
    record_id: str | None = None


def _code_for(error: dict[str, Any], field: str | None) -> str:
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
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        return None, Rejection(
            "malformed_json",
            None,
            f"malformed JSON ({exc.msg.removesuffix(' at')} at column {exc.colno})",
        )
    if not isinstance(data, dict):
        return None, Rejection(
            "not_an_object", None, f"expected a JSON object, got {type(data).__name__}"
        )
    record_id = data.get("id") if isinstance(data.get("id"), str) else None
    try:
        record = model.model_validate(data)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        field = ".".join(str(p) for p in error["loc"]) or None
        got = error.get("input")
        shown = "" if error["type"] == "missing" else f" (got {_short(got)})"
        message = error["msg"].removeprefix("Value error, ")
        where = f"field '{field}': " if field else ""
        return None, Rejection(
            _code_for(error, field), field, f"{where}{message}{shown}", record_id
        )
    return to_row(record), None


def _short(value: Any) -> str:
    text = (
        json.dumps(value, ensure_ascii=False, default=str)
        if not isinstance(value, dict)
        else "an object"
    )
    return text if len(text) <= 60 else text[:57] + "..."
