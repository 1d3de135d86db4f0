"""Upgrading every generation: all rows, documents and the app's bookkeeping arrive intact at the target."""

from __future__ import annotations

import os
import re
import stat
from contextlib import closing
from pathlib import Path

import apsw
import pytest
from support import GENERATIONS, database, execute, query, table_rows

from upgrader.installation import locate
from upgrader.recorder import read_history
from upgrader.schema import read_schema, schema_from_sql
from upgrader.upgrade import upgrade

APP_MIGRATIONS = [
    "20250126_120000_add_soft_delete",
    "20260128_120000_add_contract_history",
    "20260203_120000_make_employee_fields_optional",
]


def fresh_layout(catalog, generation: int) -> dict[str, tuple[str, ...]]:
    schema = schema_from_sql(catalog.step(generation).schema_sql)
    return {name: t.column_names for name, t in schema.tables.items()}


def actual_layout(root: Path) -> dict[str, tuple[str, ...]]:
    with closing(apsw.Connection(str(database(root)), flags=apsw.SQLITE_OPEN_READONLY)) as conn:
        return {name: t.column_names for name, t in read_schema(conn).tables.items()}


@pytest.mark.parametrize("generation", GENERATIONS)
def test_every_generation_reaches_the_latest_with_every_check_green(install, catalog, generation):
    root = install(generation)
    result = upgrade(locate(root, environ={}))
    assert result.status == "upgraded"
    assert result.plan.current.generation == generation
    assert [c.name for c in result.checks] == [
        "rows",
        "values",
        "documents",
        "schema",
        "integrity",
        "foreign_keys",
        "app_operations",
    ]
    assert all(c.ok for c in result.checks), result.checks
    assert actual_layout(root) == fresh_layout(catalog, 8), "column order must equal a fresh g8 database"


@pytest.mark.parametrize("generation", GENERATIONS)
def test_every_value_of_every_row_survives(install, generation):
    root = install(generation)
    before = table_rows(root)
    upgrade(locate(root, environ={}))
    after = table_rows(root)
    for table, rows in before.items():
        if table == "migrations":
            assert rows.keys() <= after[table].keys()
        else:
            assert after[table].keys() == rows.keys(), table
        for key, record in rows.items():
            kept = {col: after[table][key][col] for col in record}
            assert kept == record, (table, key)


def test_rows_still_in_the_wal_file_are_upgraded_too(install):
    root = install(3)
    wal = Path(f"{database(root)}-wal")
    assert wal.stat().st_size > 0
    (visits,) = query(root, "SELECT count(*) FROM medical_visits")[0]
    upgrade(locate(root, environ={}))
    assert query(root, "SELECT count(*) FROM medical_visits")[0][0] == visits
    assert not wal.exists() or wal.stat().st_size == 0


def test_the_upgraded_database_stays_in_wal_mode_like_the_app_expects(install):
    root = install(1)
    upgrade(locate(root, environ={}))
    with open(database(root), "rb") as handle:
        header = handle.read(20)
    assert header[18:20] == b"\x02\x02", "file format bytes 18-19 must say WAL"


@pytest.mark.parametrize("generation", [1, 5, 7, 8])
def test_the_latest_app_finds_nothing_pending(install, generation):
    root = install(generation)
    upgrade(locate(root, environ={}))
    rows = query(root, 'SELECT "name", "batch", "applied_at", "rollback_name" FROM "migrations" ORDER BY "id"')
    assert [r[0] for r in rows] == APP_MIGRATIONS
    assert {r[1] for r in rows} == {1}
    for _name, _batch, applied_at, _rollback in rows:
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{6})?", applied_at)
    assert [r[3] for r in rows] == [f"rollback_{n}" for n in APP_MIGRATIONS]


def test_app_migrations_already_recorded_are_kept_and_a_new_batch_is_used(install):
    root = install(7)
    with closing(apsw.Connection(str(database(root)))) as conn:
        conn.execute(
            'INSERT INTO "migrations" ("name", "batch", "applied_at", "rollback_name") VALUES '
            "('20260128_120000_add_contract_history', 4, '2026-01-29 10:00:00.000000', NULL)"
        )
    upgrade(locate(root, environ={}))
    rows = query(root, 'SELECT "name", "batch", "applied_at" FROM "migrations" ORDER BY "id"')
    assert rows[0] == ("20260128_120000_add_contract_history", 4, "2026-01-29 10:00:00.000000")
    assert sorted(r[0] for r in rows) == sorted(APP_MIGRATIONS)
    assert {r[1] for r in rows[1:]} == {5}


def test_history_records_each_step_with_the_checksum_of_its_sql(install, catalog):
    root = install(4)
    upgrade(locate(root, environ={}))
    with closing(apsw.Connection(str(database(root)), flags=apsw.SQLITE_OPEN_READONLY)) as conn:
        history = read_history(conn)
    assert [h["generation"] for h in history] == [5, 6, 7, 8]
    for h in history:
        assert h["checksum"] == catalog.step(h["generation"]).checksum
        assert h["upgrader_version"]
        assert h["operations_applied"] > 0


def test_a_second_run_has_nothing_to_do_and_changes_nothing(install):
    from support import file_digests

    root = install(2)
    upgrade(locate(root, environ={}))
    before = file_digests(root)
    result = upgrade(locate(root, environ={}))
    assert result.status == "up_to_date"
    assert file_digests(root) == before


@pytest.mark.parametrize("start,target", [(1, 2), (1, 5), (2, 6), (5, 7), (6, 7), (3, 4)])
def test_an_older_target_can_be_chosen(install, catalog, start, target):
    root = install(start)
    result = upgrade(locate(root, environ={}), f"g{target}")
    assert result.status == "upgraded"
    assert all(c.ok for c in result.checks)
    again = upgrade(locate(root, environ={}), f"g{target}")
    assert again.status == "up_to_date"


def test_a_release_number_selects_its_generation(install):
    root = install(5)
    result = upgrade(locate(root, environ={}), "2.1.4")
    assert result.plan.target.label == "g7"


def test_no_working_files_are_left_behind(install):
    root = install(1)
    upgrade(locate(root, environ={}))
    leftovers = [p.name for p in (root / "data").iterdir() if "wems-upgrade" in p.name]
    assert leftovers == []


def test_the_database_is_found_through_env_file_and_environment(install, tmp_path):
    root = install(6)
    (root / "data").rename(root / "base")
    (root / ".env").write_text(
        '# site settings\nDATABASE_DIR="base"\nexport DATABASE_NAME=employee_manager.db\n', encoding="utf-8"
    )
    found = locate(root, environ={})
    assert found.database == (root / "base" / "employee_manager.db").resolve()
    assert upgrade(found).status == "upgraded"
    moved = tmp_path / "elsewhere.db"
    found = locate(root, environ={"DATABASE_PATH": str(moved)})
    assert found.database == moved


def test_references_already_broken_before_the_upgrade_do_not_block_it(install):
    root = install(6)
    execute(root, "PRAGMA foreign_keys=OFF; DELETE FROM employees WHERE rowid = 3")
    result = upgrade(locate(root, environ={}))
    fk = next(c for c in result.checks if c.name == "foreign_keys")
    assert fk.ok and "already pointed to missing rows" in fk.detail


@pytest.mark.skipif(os.name != "posix", reason="owners and modes are POSIX")
def test_the_upgraded_file_keeps_the_owner_and_mode_of_the_original(install):
    root = install(2)
    db = database(root)
    os.chmod(db, 0o664)
    os.chown(db, 1000, 1000)
    upgrade(locate(root, environ={}))
    st = db.stat()
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o664, 1000, 1000)


def test_network_share_paths_become_uris_sqlite_accepts():
    from pathlib import PurePosixPath, PureWindowsPath

    from upgrader.snapshot import sqlite_uri

    assert sqlite_uri(PurePosixPath("/srv/wems data/é.db")) == "file:/srv/wems%20data/%C3%A9.db"
    assert sqlite_uri(PureWindowsPath(r"\\srv-rh\partage\x.db")) == "file:////srv-rh/partage/x.db"
    assert sqlite_uri(PureWindowsPath(r"C:\Wareflow EMS\data\x.db")) == "file:C:/Wareflow%20EMS/data/x.db"


def test_large_changed_tables_get_a_quick_check_and_small_ones_a_full_one(install, monkeypatch):
    monkeypatch.setattr("upgrader.validator.FULL_CHECK_ROWS", 60)
    root = install(1)
    result = upgrade(locate(root, environ={}))
    integrity = next(c for c in result.checks if c.name == "integrity")
    assert integrity.ok and "employees" in integrity.detail and "medical_visits" not in integrity.detail


def test_mixed_spellings_of_a_contract_type_are_kept_byte_for_byte(install):
    root = install(5)
    execute(root, "UPDATE employees SET contract_type = 'Interim' WHERE id = (SELECT min(id) FROM employees)")
    execute(root, "UPDATE employees SET contract_type = 'Intérim' WHERE id = (SELECT max(id) FROM employees)")
    spelled = "SELECT id, CAST(contract_type AS BLOB) FROM employees ORDER BY id"
    before = query(root, spelled)
    assert {bytes(v) for _i, v in before} >= {b"Interim", "Intérim".encode()}
    upgrade(locate(root, environ={}))
    assert query(root, spelled) == before
