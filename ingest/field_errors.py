"""Where a pydantic validation error points and what it says, as the input spells it.

ONE rule for every place that reports a pydantic error by field: ingest's rejections, the
interview service's refusals (and so the CLI's), the API's 422 bodies and the settings.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel


@dataclass(frozen=True)
class FieldError:
    """One field's error: `field` a path (`offer_details.base_salary`, `interviewer_names.2`;
    "" for the input as a whole), `message` pydantic's, `error` the pydantic error reported
    (its type and input, for a rejection's code)."""

    field: str
    message: str
    error: Mapping[str, Any]


def field_errors(
    errors: Sequence[Mapping[str, Any]],
    model: type[BaseModel] | None = None,
    under: Sequence[str] = (),
) -> list[FieldError]:
    """One error per field, in pydantic's order. A value no member of a union takes (an amount,
    `int | float`) fails once per member, located with the member's tag
    (`offer_details.base_salary.int`, a field no input has, and "should be a valid integer" for
    `1e400` or `"abc"`): the tags are dropped and the last member's error is the one reported
    (`should be a finite number`, `a valid number`). Tags are told from fields by walking
    `model`; `under` is what a location holds before the model's fields (the API's `body`);
    a location outside the model (no model, a query parameter) is kept as it is."""
    found: dict[str, list[tuple[Mapping[str, Any], bool]]] = {}
    for error in errors:
        field, tagged = _field_path(tuple(error.get("loc", ())), model, tuple(under))
        found.setdefault(field, []).append((error, tagged))
    return [_reported(field, group) for field, group in found.items()]


def _reported(field: str, group: list[tuple[Mapping[str, Any], bool]]) -> FieldError:
    tagged = any(is_tagged for _, is_tagged in group)
    error = group[-1][0] if tagged else group[0][0]
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    return FieldError(field, message, error)


def _field_path(
    loc: tuple[int | str, ...], model: type[BaseModel] | None, under: tuple[str, ...]
) -> tuple[str, bool]:
    """A location as a field path without the tags of union members, and whether it had any."""
    if model is None or loc[: len(under)] != under:
        return ".".join(str(part) for part in loc), False
    parts: list[str] = list(under)
    current: type[BaseModel] | None = model
    tagged = False
    for part in loc[len(under) :]:
        if isinstance(part, int):
            parts.append(str(part))
        elif current is None:  # past a field's own type: a union member's tag
            tagged = True
        else:
            parts.append(part)
            info = current.model_fields.get(part)
            current = _model_in(info.annotation) if info is not None else None
    return ".".join(parts), tagged


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model a field holds (`OfferDetails | None`: OfferDetails), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return next(filter(None, (_model_in(arg) for arg in typing.get_args(annotation))), None)
