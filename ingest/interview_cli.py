"""`itrack interview ...` (placeholder until the service issue lands)."""

import typer

app = typer.Typer(help="Track one interview process at a time.", no_args_is_help=True)
