"""SQL string literals written into a DuckDB statement's text, where a parameter cannot go
(a file path in COPY or ATTACH, a pattern compiled into a check). DuckDB's strings are
standard-conforming: quotes doubled, backslashes literal."""

from __future__ import annotations


def sql_text(text: str) -> str:
    """`text` as a SQL string literal (it must not hold a NUL character)."""
    return "'" + text.replace("'", "''") + "'"
