"""The command line as a user meets it: output, --version, --demo and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from contextlib import closing

import apsw
import pytest
from support import PIPE_ENCODING, database, execute, file_digests

from upgrader import errors
from upgrader.cli import main
from upgrader.loader import load_catalog
from upgrader.planner import make_plan
from upgrader.schema import differences, read_schema


def test_an_upgrade_prints_plan_migration_validation_and_summary(install, capsys):
    root = install(1)
    assert main(["--yes", "--data-dir", str(root)]) == errors.EXIT_OK
    out = capsys.readouterr().out
    for heading in ("Plan", "Database migration", "Validation", "Done: the database is now g8"):
        assert heading in out
    assert "Database is:   g1" in out


def test_nothing_to_do_exits_zero_with_its_own_message(install, capsys):
    root = install(3)
    main(["--yes", "--data-dir", str(root)])
    capsys.readouterr()
    assert main(["--yes", "--data-dir", str(root)]) == errors.EXIT_OK
    assert "Nothing to do" in capsys.readouterr().out


def test_version_names_the_target_release_sqlite_and_migrations_digest(capsys, catalog):
    assert main(["--version"]) == 0
    out = capsys.readouterr().out
    assert "targets Wareflow EMS 2.3.2" in out
    assert "SQLite 3." in out
    assert catalog.digest in out


def test_help_lists_every_exit_code(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for code in errors.EXIT_CODES:
        assert f"  {code}  " in out


def test_an_unknown_option_is_a_usage_error(capsys):
    assert main(["--frobnicate"]) == errors.EXIT_USAGE
    assert "Unrecognized arguments: --frobnicate" in capsys.readouterr().err


def test_demo_builds_an_old_installation_and_upgrades_it(tmp_path, capsys):
    folder = tmp_path / "demo"
    assert main(["--demo", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "Created a demo installation" in out and "Done: the database is now g8" in out
    assert main(["--demo", str(folder)]) == 0, "a second demo replaces the first"


def test_demo_never_overwrites_a_folder_it_did_not_make(tmp_path, capsys):
    folder = tmp_path / "precious"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me", encoding="utf-8")
    assert main(["--demo", str(folder)]) == errors.EXIT_USAGE
    assert (folder / "notes.txt").read_text(encoding="utf-8") == "keep me"


def test_the_module_runs_as_a_program(install):
    root = install(5)
    done = subprocess.run(
        [sys.executable, "-m", "upgrader", "--yes", "--data-dir", str(root)],
        capture_output=True,
        text=True,
        encoding=PIPE_ENCODING,
    )
    assert done.returncode == 0, done.stderr
    assert "Done" in done.stdout


@pytest.mark.parametrize("args", [["--yes"], ["--dry-run"], ["--status"]])
def test_json_through_a_pipe_is_one_utf8_object_whatever_the_code_page(install, args):
    """A script reading --json gets UTF-8 (a Windows pipe otherwise carries cp1252) and nothing else."""
    root = install(2, name="PC-ENTREPÔT-03")
    done = subprocess.run(
        [sys.executable, "-m", "upgrader", "--json", *args, "--data-dir", str(root)],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr.decode(PIPE_ENCODING, "replace")
    result = json.loads(done.stdout.decode("utf-8"))
    assert result["installation"].endswith("PC-ENTREPÔT-03")


def test_text_through_a_pipe_is_readable_in_the_pipes_code_page(install):
    root = install(2, name="PC-ENTREPÔT-03")
    done = subprocess.run(
        [sys.executable, "-m", "upgrader", "--dry-run", "--data-dir", str(root)],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
    )
    assert done.returncode == 0
    out = done.stdout.decode(PIPE_ENCODING)
    assert "PC-ENTREPÔT-03" in out and "DRY RUN" in out


# --- --show-sql --------------------------------------------------------------------------------


def planned_statements(root, target: str | None = None) -> list[str]:
    catalog = load_catalog()
    with closing(apsw.Connection(str(database(root)), flags=apsw.SQLITE_OPEN_READONLY)) as conn:
        plan = make_plan(conn, catalog, catalog.resolve_target(target))
    return [statement for outcome in plan.outcomes for statement in outcome.statements]


def sql_lines(text: str) -> list[str]:
    """The statements of --show-sql's text, one string each, without their comments."""
    statements, buffer = [], []
    for line in text.splitlines():
        if line.startswith("--") or not line.strip():
            continue
        buffer.append(line)
        if apsw.complete("\n".join(buffer)):
            statements.append("\n".join(buffer))
            buffer = []
    assert not buffer
    return statements


@pytest.mark.parametrize("generation, target", [(1, None), (4, None), (6, "g7"), (2, "2.0.0")])
def test_show_sql_prints_the_plans_statements_and_changes_nothing(install, capsys, generation, target):
    root = install(generation)
    before, paths = file_digests(root), sorted(root.rglob("*"))
    args = ["--show-sql", "--data-dir", str(root)] + (["--to-version", target] if target else [])
    assert main(args) == errors.EXIT_OK
    out = capsys.readouterr().out
    expected = planned_statements(root, target)
    assert expected and sql_lines(out) == [s if s.endswith(";") else s + ";" for s in expected]
    assert "Nothing was changed" in out
    assert file_digests(root) == before and sorted(root.rglob("*")) == paths, "no backup, no log, no file"


def test_the_sql_shown_turns_a_copy_into_the_target_schema(install, capsys, tmp_path, catalog):
    """The text is the exact SQL: run on a copy of the database, it gives the target's schema."""
    root = install(1)
    assert main(["--show-sql", "--data-dir", str(root)]) == errors.EXIT_OK
    out = capsys.readouterr().out
    copy = tmp_path / "copy.db"
    with (
        closing(apsw.Connection(str(database(root)), flags=apsw.SQLITE_OPEN_READONLY)) as source,
        closing(apsw.Connection(str(copy))) as conn,
    ):
        with conn.backup("main", source, "main") as backup:
            backup.step()
        conn.execute("PRAGMA foreign_keys=OFF")
        conn.execute("BEGIN")
        for statement in sql_lines(out):
            conn.execute(statement)
        conn.execute("COMMIT")
        assert differences(read_schema(conn), catalog.latest.schema) == []


def test_show_sql_as_json(install, capsys):
    root = install(5)
    assert main(["--show-sql", "--json", "--data-dir", str(root)]) == errors.EXIT_OK
    result = json.loads(capsys.readouterr().out)
    assert (result["status"], result["exit_code"], result["error"]) == ("show_sql", 0, None)
    assert (result["from"]["generation"], result["to"]["generation"]) == ("g5", "g8")
    assert result["statements"] == planned_statements(root)
    assert [s["generation"] for s in result["steps"]] == ["g6", "g7", "g8"]
    first = result["steps"][0]["operations"][0]
    assert first == {
        "operation": "add column employees.deleted_at",
        "applied": True,
        "statements": ['ALTER TABLE "employees" ADD COLUMN "deleted_at" DATETIME;'],
    }
    assert [s for step in result["steps"] for o in step["operations"] for s in o["statements"]] == result["statements"]
    assert result["app_migrations"] == [
        "20250126_120000_add_soft_delete",
        "20260128_120000_add_contract_history",
        "20260203_120000_make_employee_fields_optional",
    ]


def test_show_sql_names_what_is_already_there(install, capsys):
    root = install(5)
    execute(root, 'ALTER TABLE "employees" ADD COLUMN "deleted_at" DATETIME')
    assert main(["--show-sql", "--data-dir", str(root)]) == errors.EXIT_OK
    out = capsys.readouterr().out
    assert "-- already present, skipped: add column employees.deleted_at\n" in out
    assert 'ADD COLUMN "deleted_at"' not in out.split("-- g6")[1].split("employees.deleted_by")[0]


def test_show_sql_with_nothing_to_do(install, capsys):
    root = install(3)
    assert main(["--yes", "--json", "--data-dir", str(root)]) == errors.EXIT_OK
    capsys.readouterr()
    assert main(["--show-sql", "--data-dir", str(root)]) == errors.EXIT_OK
    assert "-- Nothing to do: no SQL would run." in capsys.readouterr().out
    assert main(["--show-sql", "--json", "--data-dir", str(root)]) == errors.EXIT_OK
    result = json.loads(capsys.readouterr().out)
    assert (result["statements"], result["steps"]) == ([], [])


def test_show_sql_refuses_what_an_upgrade_refuses(install, capsys):
    root = install(3)
    execute(root, 'CREATE TABLE "my_notes" ("id" INTEGER PRIMARY KEY)')
    assert main(["--show-sql", "--json", "--data-dir", str(root)]) == errors.EXIT_UNKNOWN_SCHEMA
    assert json.loads(capsys.readouterr().out)["error"]["reference"] == "unknown-structure"


@pytest.mark.parametrize("other", [["--dry-run"], ["--status"], ["--list-backups"], ["--restore", "x"]])
def test_show_sql_combined_with_another_action_is_a_usage_error(install, capsys, other):
    root = install(3)
    before = file_digests(root)
    assert main(["--show-sql", *other, "--data-dir", str(root)]) == errors.EXIT_USAGE
    assert f"--show-sql cannot be combined with {other[0]}" in capsys.readouterr().err
    assert file_digests(root) == before
