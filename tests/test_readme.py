"""The README's commands, run as shown (#14).

In a scratch copy of a fresh checkout (data/sample/, examples/, the dbt project and the
virtualenv of this one), in the README's order:
- every ```sh block runs in one bash session (`set -euo pipefail`, `.venv/bin` first on PATH),
  so variables a block sets are there for the next; a block right after the comment
  `<!-- not run: REASON -->` is skipped (make targets that bootstrap or run this very suite);
- every ```console block: each `$ COMMAND` line runs in that session and what it prints (stdout
  and stderr) must be the lines below it, exactly; `$NAME` in those lines is the shell
  variable's value;
- every ```sql block runs through `itrack sql` on the published warehouse and must return rows;
- every ```python block runs with the virtualenv's python;
- the ```cron line is run by tests/test_daily_build.py::test_readme_cron_line_runs_as_written.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"(<!-- not run: [^>]*-->\s*\n)?```(\w+)\n(.*?)\n```", re.S)
MARK = "@@README-OUTPUT@@"


def blocks() -> list[tuple[str, str, bool]]:
    """(language, body, skipped) in README order."""
    text = (ROOT / "README.md").read_text()
    return [(m.group(2), m.group(3), bool(m.group(1))) for m in FENCE.finditer(text)]


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("readme")
    shutil.copytree(ROOT / "data" / "sample", root / "data" / "sample")
    shutil.copytree(ROOT / "examples", root / "examples")
    for name in (".venv", "dbt_project", "Makefile", "pyproject.toml"):
        (root / name).symlink_to(ROOT / name)
    return root


def env(root: Path) -> dict[str, str]:
    return {
        "PATH": f"{ROOT / '.venv' / 'bin'}:/usr/bin:/bin",
        "HOME": str(root),
        "LANG": "C.UTF-8",
        "PYTHONPATH": str(ROOT),
    }


def test_readme_has_runnable_blocks():
    kinds = [lang for lang, _body, skipped in blocks() if not skipped]
    assert kinds.count("sh") >= 4 and "console" in kinds and "sql" in kinds
    assert "python" in kinds
    assert "examples/" in (ROOT / "README.md").read_text()


def test_readme_commands_work_as_written(checkout):
    script = ["set -euo pipefail", f"cd {checkout}"]
    expected: list[tuple[str, list[str]]] = []
    for lang, body, skipped in blocks():
        if skipped:
            continue
        if lang == "sh":
            script.append(body)
        elif lang == "console":
            commands = re.split(r"^\$ ", body, flags=re.M)[1:]
            for chunk in commands:
                command, *output = chunk.split("\n")
                while command.endswith("\\"):
                    command = command[:-1] + output.pop(0).strip()
                index = len(expected)
                expected.append((command, [line for line in output if line.strip()]))
                script.append(f"echo '{MARK}{index}'")
                script.append(f"{command} 2>&1 || true")
                script.append(f"echo '{MARK}end'")
        elif lang == "sql":
            sql = body.replace("'", "'\\''")
            script.append(f"itrack sql -c '{sql}' > /dev/null")
            script.append(
                f"test \"$(itrack sql --format json -c '{sql}')\" != '[]' "
                f"|| {{ echo 'README sql returned no rows: {sql[:60]}' >&2; exit 1; }}"
            )
        elif lang == "python":
            script.append(f"python - <<'README_PY'\n{body}\nREADME_PY")
    script.append(f"echo '{MARK}vars'; declare -p | grep -E '^declare -[-x] [A-Z][A-Z0-9_]*='")
    done = subprocess.run(
        ["bash", "-c", "\n".join(script)],
        env=env(checkout),
        capture_output=True,
        text=True,
        timeout=900,
        cwd=checkout,
    )
    assert done.returncode == 0, (done.stdout[-4000:], done.stderr[-4000:])
    parts = done.stdout.split(MARK)
    variables = dict(re.findall(r'declare -[-x] ([A-Z][A-Z0-9_]*)="([^"]*)"', parts[-1]))
    outputs = {}  # console command index -> what it printed
    for part in parts[1:-1]:
        key, _newline, body = part.partition("\n")
        outputs.setdefault(key, body)
    for index, (command, lines) in enumerate(expected):
        got = [line for line in outputs[str(index)].splitlines() if line.strip()]
        want = [
            re.sub(r"\$([A-Z][A-Z0-9_]*)", lambda m: variables.get(m.group(1), m.group(0)), line)
            for line in lines
        ]
        assert got == want, command


def test_documented_make_targets_exist():
    text = (ROOT / "README.md").read_text()
    targets = set(re.findall(r"(?:`|^)make ([a-z][a-z-]*)", text, re.M))
    listed = subprocess.run(
        ["make", "-C", str(ROOT), "help"], capture_output=True, text=True, check=True
    ).stdout
    known = set(re.findall(r"^  ([a-z][a-z-]*) ", listed, re.M))
    assert targets and targets <= known, targets - known
    assert os.access(ROOT / ".venv" / "bin" / "itrack", os.X_OK)
