"""The command line as a user meets it: output, --version, --demo and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import PIPE_ENCODING
from upgrader import errors
from upgrader.cli import main


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
    done = subprocess.run([sys.executable, "-m", "upgrader", "--yes", "--data-dir", str(root)],
                          capture_output=True, text=True, encoding=PIPE_ENCODING)
    assert done.returncode == 0, done.stderr
    assert "Done" in done.stdout


@pytest.mark.parametrize("args", [["--yes"], ["--dry-run"], ["--status"]])
def test_json_through_a_pipe_is_one_utf8_object_whatever_the_code_page(install, args):
    """A script reading --json gets UTF-8 (a Windows pipe otherwise carries cp1252) and nothing else."""
    root = install(2, name="PC-ENTREPÔT-03")
    done = subprocess.run([sys.executable, "-m", "upgrader", "--json", *args, "--data-dir", str(root)],
                          capture_output=True, stdin=subprocess.DEVNULL, timeout=300)
    assert done.returncode == 0, done.stderr.decode(PIPE_ENCODING, "replace")
    result = json.loads(done.stdout.decode("utf-8"))
    assert result["installation"].endswith("PC-ENTREPÔT-03")


def test_text_through_a_pipe_is_readable_in_the_pipes_code_page(install):
    root = install(2, name="PC-ENTREPÔT-03")
    done = subprocess.run([sys.executable, "-m", "upgrader", "--dry-run", "--data-dir", str(root)],
                          capture_output=True, stdin=subprocess.DEVNULL, timeout=300)
    assert done.returncode == 0
    out = done.stdout.decode(PIPE_ENCODING)
    assert "PC-ENTREPÔT-03" in out and "DRY RUN" in out
