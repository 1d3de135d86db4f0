"""--dry-run runs the real upgrade on a throwaway copy: same plan, same checks, nothing written."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from support import file_digests

from upgrader.cli import main
from upgrader.installation import locate
from upgrader.upgrade import upgrade


def temp_leftovers() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("*.wems-upgrade-*")}


@pytest.mark.parametrize("generation", [1, 4, 6, 7])
def test_a_dry_run_writes_nothing_and_predicts_the_real_run(install, generation):
    root = install(generation)
    before, temps = file_digests(root), temp_leftovers()
    preview = upgrade(locate(root, environ={}), dry_run=True)
    assert preview.status == "dry_run"
    assert file_digests(root) == before
    assert temp_leftovers() == temps
    real = upgrade(locate(root, environ={}))
    assert [(o.step.label, o.operation, o.applied) for o in preview.outcomes] == [
        (o.step.label, o.operation, o.applied) for o in real.outcomes
    ]
    assert [(c.name, c.ok, c.detail) for c in preview.checks] == [(c.name, c.ok, c.detail) for c in real.checks]


def test_the_dry_run_report_says_nothing_was_changed(install, capsys):
    root = install(2)
    assert main(["--yes", "--data-dir", str(root), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "DRY RUN" in out and "Nothing in" in out
    assert "g3: Employees get a phone number" in out
    assert "✔ schema" in out


def test_a_dry_run_of_an_up_to_date_database_says_so(install, capsys):
    root = install(8)
    main(["--yes", "--data-dir", str(root)])
    capsys.readouterr()
    assert main(["--yes", "--data-dir", str(root), "--dry-run"]) == 0
    assert "Nothing to do" in capsys.readouterr().out
