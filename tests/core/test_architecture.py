"""The layers of docs/architecture.md, as import-linter contracts (.importlinter): the ML code imports
no Django, core no domain app, each stage only the stages before it. And ruff (ruff.toml): the tree
is lint-clean and formatted."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_import_contracts_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    out = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert "0 broken" in out.stdout


def test_every_ignored_import_says_why():
    """An ignore_imports line must sit under a comment that explains it (none today)."""
    lines = (ROOT / ".importlinter").read_text().splitlines()
    for i, line in enumerate(lines):
        if "->" in line:
            assert any(x.strip().startswith("#") for x in lines[max(0, i - 2) : i]), (
                f"unexplained ignore: {line.strip()}"
            )


def test_ruff_finds_nothing_and_the_tree_is_formatted():
    ruff = Path(sys.executable).with_name("ruff")
    lint = subprocess.run(
        [str(ruff), "check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert lint.returncode == 0, lint.stdout[-4000:]
    fmt = subprocess.run(
        [str(ruff), "format", "--check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert fmt.returncode == 0, fmt.stdout[-4000:]
