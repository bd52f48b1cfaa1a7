"""constraints.txt, the versions `make install` installs, locks every dependency pyproject.toml
names at a version its range allows, and the suite runs with exactly those versions."""

from __future__ import annotations

import tomllib
from importlib.metadata import version
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]


def _locked() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, pinned = line.partition("==")
            pins[canonicalize_name(name)] = pinned
    return pins


def test_every_dependency_is_locked_within_its_range() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    locked = _locked()
    unlocked = []
    for text in project["dependencies"] + project["optional-dependencies"]["dev"]:
        wanted = Requirement(text)
        if wanted.marker is not None and not wanted.marker.evaluate():
            continue
        pinned = locked.get(canonicalize_name(wanted.name))
        if pinned is None or not wanted.specifier.contains(pinned, prereleases=True):
            unlocked.append(f"{text}: constraints.txt has {pinned}")
    assert unlocked == []


def test_the_suite_runs_with_the_locked_versions() -> None:
    # `make install` installs them; a different version here means the venv was changed by
    # hand (or constraints.txt re-locked without `make install`)
    differ = {name: (pinned, version(name)) for name, pinned in _locked().items()}
    assert {name: both for name, both in differ.items() if both[0] != both[1]} == {}
