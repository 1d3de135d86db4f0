"""--dry-run runs the real upgrade on a throwaway copy: same plan, same checks, nothing written."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
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


def _files(root: Path) -> dict[str, tuple]:
    """Every file and folder of an installation but its documents: which file it is, and its content."""
    found = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if relative.startswith("documents/"):
            continue
        st = path.lstat()
        content = "folder" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
        found[relative] = (st.st_dev, st.st_ino, content)
    return found


def _relative(path: str | None, root: Path) -> str | None:
    return None if path is None else Path(path).relative_to(root).as_posix()


def _sqlite_companion(path: str, changed: set[str]) -> bool:
    """A -wal or -shm file goes with its database (upgrader.files): folded in when it changes."""
    return any(path == f"{db}{suffix}" for db in changed for suffix in ("-wal", "-shm"))


def only_the_settings_to_convert(root: Path) -> None:
    """An up-to-date database (in WAL mode, as the upgrade leaves it) and settings of an old release."""
    assert main(["--yes", "--json", "--data-dir", str(root)]) == 0
    (root / "config.yaml").unlink()
    (root / "config.json").write_text('{"alerts": {"critical_days": 5, "warning_days": 30}}', encoding="utf-8")


@pytest.mark.parametrize(
    ("generation", "args", "prepare"),
    [
        (2, [], None),
        (5, [], None),
        (8, [], None),
        (3, ["--no-backup"], None),
        (1, ["--to-version", "g4"], None),
        (8, [], only_the_settings_to_convert),
    ],
)
def test_the_dry_run_lists_exactly_the_files_the_real_run_creates_changes_or_renames(
    install, capsys, tmp_path, generation, args, prepare
):
    """The dry run's `files` against what a real run of a copy of the installation really did."""
    original = install(generation, name="original")
    if prepare:
        prepare(original)
        capsys.readouterr()
    assert main(["--json", "--dry-run", "--data-dir", str(original), *args]) == 0
    listed = json.loads(capsys.readouterr().out)["files"]
    assert listed and all(set(f) == {"path", "action", "to"} for f in listed)
    assert {f["action"] for f in listed} <= {"create", "change", "rename"}
    copy = tmp_path / "copy"
    shutil.copytree(original, copy)
    root = locate(copy, environ={}).root
    listed = [{**f, "path": _relative(f["path"].replace(str(original), str(root)), root)} for f in listed]
    listed = [{**f, "to": _relative(f["to"] and f["to"].replace(str(original), str(root)), root)} for f in listed]
    before = _files(root)
    assert main(["--json", "--yes", "--data-dir", str(root), *args]) == 0
    capsys.readouterr()
    after = _files(root)
    created = {p for p in after if p not in before}
    gone = {p for p in before if p not in after}
    changed = {p for p in before.keys() & after.keys() if before[p] != after[p]}

    explained: set[str] = set()
    for item in listed:
        path, to = item["path"], item["to"]
        if item["action"] == "create":
            name = re.compile(re.escape(path).replace(r"\*", "[^/]+") + "$")
            made = {p for p in created if name.match(p)}
            assert len(made) == 1, f"{path} was listed as created: {sorted(created)}"
            (made_path,) = made
            inside = {p for p in created if p.startswith(made_path + "/")}
            above = {p for p in created if made_path.startswith(p + "/")}
            explained |= made | inside | above
        elif item["action"] == "change":
            assert path in changed, f"{path} was listed as changed"
            explained.add(path)
            explained |= {p for p in gone if _sqlite_companion(p, {path})}
        else:
            assert path in gone and to in created, f"{path} was listed as renamed to {to}"
            assert after[to] == before[path], f"{to} is not the file {path} was"
            explained |= {path, to}
    assert (created | gone | changed) - explained == set(), "the real run did more than the dry run said"
