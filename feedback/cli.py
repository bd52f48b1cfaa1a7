"""`itrack feedback ...` (placeholder until the feedback issue lands)."""

import typer

app = typer.Typer(help="Write metrics back to feeders.json and placement history.")
