"""Everything wems-upgrade must refuse: a clear message, its own exit code, and every file as it was."""

from __future__ import annotations

import shutil
from contextlib import closing

import apsw
import pytest
from support import database, execute, file_digests

from upgrader import errors
from upgrader.cli import main


def refused(root, capsys, *args) -> tuple[int, str]:
    before = file_digests(root)
    code = main(["--yes", "--data-dir", str(root), *args])
    assert file_digests(root) == before, "a refusal must leave every file byte-for-byte as it was"
    return code, capsys.readouterr().err


DRIFT = {
    "extra column": 'ALTER TABLE "employees" ADD COLUMN "badge_number" VARCHAR(20)',
    "extra table": 'CREATE TABLE "my_notes" ("id" INTEGER PRIMARY KEY, "text" TEXT)',
    "extra index": 'CREATE INDEX "my_index" ON "caces" ("kind")',
    "changed type": None,
    "missing index": 'DROP INDEX "caces_expiration_date"',
    "extra trigger": 'CREATE TRIGGER "t" AFTER INSERT ON "caces" BEGIN SELECT 1; END',
}


@pytest.mark.parametrize("change", DRIFT)
@pytest.mark.parametrize("generation", [1, 6])
def test_a_schema_changed_by_hand_is_refused_with_the_differences(install, capsys, change, generation):
    root = install(generation)
    if DRIFT[change]:
        execute(root, DRIFT[change])
    else:
        with closing(apsw.Connection(str(database(root)))) as conn:
            conn.execute("PRAGMA writable_schema=ON")
            conn.execute(
                "UPDATE sqlite_master SET sql = replace(sql, '\"kind\" VARCHAR(255)', '\"kind\" INTEGER') "
                "WHERE name = 'caces'"
            )
    code, err = refused(root, capsys)
    assert code == errors.EXIT_UNKNOWN_SCHEMA
    assert "REFUSED" in err and "Nothing was changed" in err
    expected_word = {
        "extra column": "badge_number",
        "extra table": "my_notes",
        "extra index": "my_index",
        "changed type": "caces.kind",
        "missing index": "caces_expiration_date",
        "extra trigger": "trigger",
    }[change]
    assert expected_word in err


def test_an_index_with_the_right_name_but_other_columns_is_refused(install, capsys):
    root = install(2)
    execute(root, 'CREATE INDEX "employee_role" ON "employees" ("role", "workspace")')
    code, err = refused(root, capsys)
    assert code == errors.EXIT_UNKNOWN_SCHEMA
    assert "employee_role" in err


def test_a_rebuild_that_would_drop_a_hand_made_column_is_refused(install, capsys):
    root = install(7)
    execute(root, 'ALTER TABLE "employees" ADD COLUMN "badge" TEXT')
    code, err = refused(root, capsys)
    assert code == errors.EXIT_UNKNOWN_SCHEMA
    assert "employees.badge" in err


def test_a_database_upgraded_by_a_newer_upgrader_is_refused(install, capsys):
    root = install(8)
    main(["--yes", "--data-dir", str(root)])
    execute(
        root,
        "INSERT INTO wems_upgrade_history (run_at, upgrader_version, generation, step, checksum, "
        "operations_applied, operations_skipped) VALUES ('2027-01-01', '9.0.0', 9, 'g9_future', 'x', 1, 0)",
    )
    code, err = refused(root, capsys)
    assert code == errors.EXIT_NEWER_DATABASE
    assert "newer" in err


def test_a_database_migrated_by_a_newer_app_is_refused(install, capsys):
    root = install(8)
    execute(
        root,
        "INSERT INTO migrations (name, batch, applied_at) VALUES "
        "('20270301_120000_add_payroll', 1, '2027-03-01 12:00:00')",
    )
    code, err = refused(root, capsys)
    assert code == errors.EXIT_NEWER_DATABASE
    assert "20270301_120000_add_payroll" in err


def test_a_downgrade_is_refused(install, capsys):
    root = install(8)
    code, err = refused(root, capsys, "--to-version", "g5")
    assert code == errors.EXIT_NEWER_DATABASE
    assert "never downgrades" in err


def test_a_target_newer_than_the_upgrader_knows_is_refused(install, capsys):
    root = install(3)
    code, _err = refused(root, capsys, "--to-version", "9.0.0")
    assert code == errors.EXIT_NEWER_DATABASE


def test_a_target_that_is_not_a_version_is_a_usage_error(install, capsys):
    root = install(3)
    code, _err = refused(root, capsys, "--to-version", "banana")
    assert code == errors.EXIT_USAGE


@pytest.mark.parametrize(
    "content,word",
    [
        (b"", "empty"),
        (b"this is a text file, not a database\n" * 20, "not a SQLite database"),
        (b"SQLite format 3\x00" + b"\xff" * 4000, "damaged"),
    ],
)
def test_a_file_that_is_not_a_usable_database_is_refused(install, capsys, content, word):
    root = install(1)
    db = database(root)
    for suffix in ("-wal", "-shm"):
        (db.parent / f"{db.name}{suffix}").unlink(missing_ok=True)
    db.write_bytes(content)
    code, err = refused(root, capsys)
    assert code == errors.EXIT_BAD_INSTALLATION
    assert word in err


def test_a_missing_database_is_refused(install, capsys):
    root = install(1)
    shutil.rmtree(root / "data")
    code, err = refused(root, capsys)
    assert code == errors.EXIT_BAD_INSTALLATION
    assert "no database" in err


def test_an_empty_sqlite_database_is_refused(tmp_path, capsys):
    (tmp_path / "data").mkdir()
    with closing(apsw.Connection(str(tmp_path / "data" / "employee_manager.db"))) as conn:
        conn.execute("PRAGMA user_version=1")
    code, err = refused(tmp_path, capsys)
    assert code == errors.EXIT_BAD_INSTALLATION
    assert "holds no Wareflow EMS data" in err


def test_another_programs_database_is_refused(tmp_path, capsys):
    (tmp_path / "data").mkdir()
    with closing(apsw.Connection(str(tmp_path / "data" / "employee_manager.db"))) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
    code, err = refused(tmp_path, capsys)
    assert code == errors.EXIT_BAD_INSTALLATION
    assert "not a Wareflow EMS database" in err


def test_a_folder_that_does_not_exist_is_refused(tmp_path, capsys):
    code = main(["--yes", "--data-dir", str(tmp_path / "nowhere")])
    assert code == errors.EXIT_BAD_INSTALLATION
    assert "does not exist" in capsys.readouterr().err


def test_a_database_being_written_by_another_program_is_refused(install, capsys):
    root = install(4)
    holder = apsw.Connection(str(database(root)))
    try:
        holder.execute(
            "BEGIN IMMEDIATE; INSERT INTO app_locks VALUES "
            "('x', 'PC-QUAI', 'helene', '2026-01-15 08:00:00', '2026-01-15 08:00:00', 42, '2.3.2')"
        )
        code = main(["--yes", "--data-dir", str(root)])
        assert code == errors.EXIT_IN_USE
        assert "in use" in capsys.readouterr().err
    finally:
        holder.execute("ROLLBACK")
        holder.close()
