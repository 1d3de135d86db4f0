"""The command line as a user meets it: output, --version, --demo and exit codes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from contextlib import closing
from typing import ClassVar

import apsw
import pytest
from support import PIPE_ENCODING, database, execute, file_digests

from upgrader import __version__, cli, errors, i18n
from upgrader.cli import _parser, main
from upgrader.loader import load_catalog
from upgrader.planner import make_plan
from upgrader.report import render_update
from upgrader.schema import differences, read_schema
from upgrader.updates import NewerRelease


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


# --- the language of --help -------------------------------------------------------------------


def _help(capsys, *args) -> str:
    with pytest.raises(SystemExit) as exit_:
        main([*args, "--help"])
    assert exit_.value.code == 0
    return capsys.readouterr().out


def test_french_help_reads_french_and_lists_every_option(capsys):
    out = _help(capsys, "--lang", "fr")
    for action in _parser()._actions:
        for flag in action.option_strings:
            assert flag in out, flag
    assert re.match(r"utilisation\u00a0: wems-upgrade ", out)
    for heading in ("arguments positionnels\u00a0:", "options\u00a0:", "codes de sortie\u00a0:"):
        assert f"\n{heading}\n" in out
    assert "afficher cette aide et quitter" in out and "ne pas vérifier si une version plus récente" in out
    for code in errors.EXIT_CODES:
        assert f"  {code}  " in out
    for english_text in ("usage:", "show this help message", "exit codes:", "default:", "refused:"):
        assert english_text not in out


@pytest.mark.parametrize("columns", ["60", "80", "120"])
def test_help_wraps_at_spaces_only_in_both_languages(capsys, monkeypatch, columns):
    """No word cut at its hyphen ("wems-" / "upgrade"), no ":" alone at a line's start, lines that fit."""
    monkeypatch.setenv("COLUMNS", columns)
    for language in ("en", "fr"):
        out = _help(capsys, "--lang", language)
        lines = out.splitlines()
        assert not [line for line in lines if line.rstrip().endswith("-") and not line.strip().startswith("-")]
        assert not [line for line in lines if line.lstrip().startswith((":", ";", "?"))]
        epilog = lines[lines.index("exit codes:" if language == "en" else "codes de sortie\u00a0:") :]
        assert all(len(line) <= int(columns) - 2 for line in epilog), epilog


def test_a_bad_command_line_reads_as_a_sentence_in_each_language(capsys):
    assert main(["--frobnicate"]) == errors.EXIT_USAGE
    assert "Unrecognized arguments: --frobnicate." in capsys.readouterr().err
    assert main(["--lang", "fr", "--frobnicate"]) == errors.EXIT_USAGE
    err = capsys.readouterr().err
    assert "arguments non reconnus\u00a0: --frobnicate." in err and "Lancez wems-upgrade --help" in err
    assert main(["--lang", "fr", "--data-dir"]) == errors.EXIT_USAGE
    assert "argument --data-dir\u00a0: un argument attendu." in capsys.readouterr().err


def test_a_json_usage_error_stays_english_whatever_the_language(capsys):
    assert main(["--lang", "fr", "--json", "--frobnicate"]) == errors.EXIT_USAGE
    error = json.loads(capsys.readouterr().out)["error"]
    assert error["message"] == "Unrecognized arguments: --frobnicate."


# --- the update check ----------------------------------------------------------------------------

NEWER = NewerRelease("9.9.9", "https://example.invalid/wems-upgrade/releases/9.9.9")


@pytest.fixture
def update_check(monkeypatch):
    """The update check, never on the network: records each check started and finds NEWER."""

    class FakeCheck:
        started: ClassVar[list[str]] = []
        found: NewerRelease | None = NEWER

        def __init__(self, current: str, feed: str | None = None, timeout: float = 2.0):
            self.current = current

        def start(self):
            FakeCheck.started.append(self.current)
            return self

        def result(self):
            return FakeCheck.found

    FakeCheck.started = []
    monkeypatch.setattr(cli, "UpdateCheck", FakeCheck)
    return FakeCheck


@pytest.mark.parametrize("args", [["--dry-run"], ["--yes"], ["--status"], ["--list-backups"]])
def test_a_newer_release_is_the_last_thing_shown(install, capsys, update_check, args):
    root = install(2)
    assert main([*args, "--data-dir", str(root)]) == errors.EXIT_OK
    out = capsys.readouterr().out
    assert update_check.started == [__version__]
    assert out.rstrip("\n").endswith(render_update(NEWER)) and out.count(render_update(NEWER)) == 1


def test_a_newer_release_is_shown_in_french_too(install, capsys, update_check):
    root = install(2)
    assert main(["--dry-run", "--lang", "fr", "--data-dir", str(root)]) == errors.EXIT_OK
    out = capsys.readouterr().out
    i18n.use("fr")
    assert out.rstrip("\n").endswith(render_update(NEWER))


def test_a_refusal_still_ends_with_the_newer_release(install, capsys, update_check):
    root = install(2)
    database(root).write_bytes(b"hello")
    assert main(["--yes", "--data-dir", str(root)]) == errors.EXIT_BAD_INSTALLATION
    assert update_check.started and "9.9.9" in capsys.readouterr().out


def test_no_newer_release_shows_nothing(install, capsys, update_check):
    update_check.found = None
    root = install(2)
    assert main(["--dry-run", "--data-dir", str(root)]) == errors.EXIT_OK
    out = capsys.readouterr().out
    assert update_check.started and render_update(NEWER).splitlines()[1] not in out


@pytest.mark.parametrize(
    "args",
    [
        ["--dry-run", "--data-dir", "{root}", "--no-update-check"],
        ["--dry-run", "--data-dir", "{root}", "--json"],
        ["--show-sql", "--data-dir", "{root}"],
        ["--dry-run", "--data-dir", "{root}", "--data-dir", "{other}"],
        ["--dry-run", "--sites-file", "{sites}"],
    ],
    ids=["--no-update-check", "--json", "--show-sql", "several --data-dir", "a sites file of one"],
)
def test_the_update_check_is_skipped(install, capsys, update_check, tmp_path, args):
    root, other = install(2), install(3, name="other")
    sites = tmp_path / "sites.txt"
    sites.write_text(f"{root}\n", encoding="utf-8")
    assert main([a.format(root=root, other=other, sites=sites) for a in args]) == errors.EXIT_OK
    assert update_check.started == []
    assert "9.9.9" not in capsys.readouterr().out


def test_no_update_check_for_version_or_help(capsys, update_check):
    assert main(["--version"]) == errors.EXIT_OK
    _help(capsys)
    assert update_check.started == []
    assert "9.9.9" not in capsys.readouterr().out


def test_a_question_is_asked_in_french_and_logged_in_english(install, capsys):
    root = install(2)
    assert main(["--data-dir", str(root), "--lang", "fr", "--no-update-check"]) == errors.EXIT_USAGE
    err = capsys.readouterr().err
    assert "Mettre à niveau cette installation maintenant\u00a0? Une sauvegarde est faite avant." in err
    log = sorted((root / "logs").glob("wems-upgrade-*.log"))[-1].read_text(encoding="utf-8")
    assert "Upgrade this installation now? A backup is kept first." in log and "Mettre" not in log
