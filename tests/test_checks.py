"""The checks before COMMIT reach as far as the change: the changed tables on a large file, the
whole file on a small one or on request (full_check), and say which."""

from __future__ import annotations

import json
import shutil
from contextlib import closing
from pathlib import Path

import apsw
import pytest

from upgrader import errors, i18n, validator
from upgrader.cli import main
from upgrader.installation import locate
from upgrader.loader import load_catalog
from upgrader.planner import make_plan
from upgrader.schema import read_schema
from upgrader.upgrade import migrate_copy, upgrade


def database(root: Path) -> Path:
    return locate(root, environ={}).database


def folded(root: Path) -> Path:
    """The database with its WAL folded in, out of WAL mode: one file whose pages can be damaged."""
    db = database(root)
    with closing(apsw.Connection(str(db))) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        conn.execute("PRAGMA journal_mode=DELETE").fetchall()
    return db


def damage_index(db: Path, table: str, index: str = "%") -> str:
    """Scribble over the root page of one of `table`'s indexes (its rows stay readable)."""
    with closing(apsw.Connection(str(db))) as conn:
        name, root_page = conn.execute(
            "SELECT name, rootpage FROM sqlite_master WHERE type = 'index' "
            "AND tbl_name = ? AND name LIKE ? AND sql IS NOT NULL ORDER BY name",
            (table, index),
        ).fetchone()
        (page_size,) = conn.execute("PRAGMA page_size").fetchone()
    with open(db, "r+b") as handle:
        handle.seek((root_page - 1) * page_size + 8)
        handle.write(b"\xff\x00\xff\x13" * 16)
    return name


def migrate(root: Path, tmp_path: Path, full_check: bool = False):
    """migrate_copy on a copy of the installation's database, with the original as reference."""
    db = folded(root)
    catalog = load_catalog()
    with closing(apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)) as conn:
        plan = make_plan(conn, catalog, catalog.latest)
    work = tmp_path / "work.db"
    shutil.copyfile(db, work)
    return migrate_copy(work, plan, db, None, full_check)


def check(checks, name: str):
    return next(c for c in checks if c.name == name)


@pytest.fixture
def large(monkeypatch):
    """Every database counts as large: only the changed tables are checked by default."""
    monkeypatch.setattr(validator, "WHOLE_FILE_CHECK_BYTES", 0)


def test_rebuilds_keep_every_rowid_even_after_deletions(install):
    root = install(1)
    db = folded(root)
    with closing(apsw.Connection(str(db))) as conn:
        conn.execute("DELETE FROM medical_visits WHERE rowid % 3 = 0; DELETE FROM caces WHERE rowid % 2 = 0")
        before = {
            t: conn.execute(f"SELECT rowid, id FROM {t} ORDER BY rowid").fetchall()
            for t in ("caces", "medical_visits", "employees")
        }
    assert upgrade(locate(root, environ={})).status == "upgraded"
    with closing(apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)) as conn:
        for table, rows in before.items():
            assert conn.execute(f"SELECT rowid, id FROM {table} ORDER BY rowid").fetchall() == rows, table


def test_a_small_file_is_checked_whole_and_says_so(install, tmp_path):
    _outcomes, checks = migrate(install(1), tmp_path)
    assert all(c.ok for c in checks), checks
    assert "quick check of the whole file" in check(checks, "integrity").detail
    assert check(checks, "foreign_keys").detail == "every reference points to an existing row"
    assert "not read" not in check(checks, "documents").detail


def test_a_large_file_gets_the_changed_tables_checked_and_says_what_was_not(install, tmp_path, large):
    _outcomes, checks = migrate(install(6), tmp_path)
    assert all(c.ok for c in checks), checks
    integrity = check(checks, "integrity").detail
    assert "whole file" not in integrity and "was not checked: --full-check checks it" in integrity
    assert "employees" in integrity and "integrity ok" not in integrity
    assert "the other tables' references were not read" in check(checks, "foreign_keys").detail
    assert "of tables no step changes were not read" in check(checks, "documents").detail
    assert check(checks, "values").detail == "every value kept in the 1 changed table(s)"


def test_the_checks_are_shown_in_french_and_kept_in_english(install, tmp_path, large):
    """The screen reads each check in the user's language; --json and the log keep the English."""
    _outcomes, checks = migrate(install(6), tmp_path)
    i18n.use("fr")
    integrity = check(checks, "integrity")
    assert "le reste du fichier" in integrity.shown and "n'a pas été vérifié\u00a0: --full-check" in integrity.shown
    assert "was not checked: --full-check checks it" in integrity.detail
    values = check(checks, "values")
    assert values.shown == "toutes les valeurs conservées dans 1 table modifiée"
    assert values.detail == "every value kept in the 1 changed table(s)"
    rows = check(checks, "rows")
    assert rows.shown.endswith("tables, toutes conservées") and rows.detail.endswith("tables, all kept")


def test_full_check_reads_the_whole_of_a_large_file(install, tmp_path, large):
    _outcomes, checks = migrate(install(6), tmp_path, full_check=True)
    assert all(c.ok for c in checks), checks
    assert "quick check of the whole file" in check(checks, "integrity").detail
    assert check(checks, "foreign_keys").detail == "every reference points to an existing row"
    assert "not read" not in check(checks, "documents").detail


def test_damage_in_an_unchanged_table_of_a_large_file_is_seen_only_with_full_check(install, tmp_path, large):
    """What the default no longer sees above WHOLE_FILE_CHECK_BYTES: g6 -> g8 leaves medical_visits as
    it was, so a damaged index of it (one the app's operations do not read) is copied as it is;
    --full-check finds it."""
    root = install(6)
    damage_index(folded(root), "medical_visits", "medicalvisit_result")
    _outcomes, checks = migrate(root, tmp_path)
    assert all(c.ok for c in checks), checks
    assert "was not checked" in check(checks, "integrity").detail
    with pytest.raises(errors.UpgradeFailed) as failure:
        migrate(root, tmp_path, full_check=True)
    assert any(d.startswith("integrity:") for d in failure.value.details)


@pytest.mark.parametrize("size", ["small", "large"])
def test_a_damaged_changed_table_in_the_original_is_refused_as_the_installations_fault(
    install, monkeypatch, capsys, size
):
    """g1 -> g8 rebuilds caces: the damaged index of the original is dropped, not copied, so only
    the checks of the original's changed tables see it; the run blames the installation (exit 3)."""
    if size == "large":
        monkeypatch.setattr(validator, "WHOLE_FILE_CHECK_BYTES", 0)
    root = install(1)
    db = folded(root)
    damage_index(db, "caces")
    before = db.read_bytes()
    code = main(["--data-dir", str(root), "--yes", "--no-color"])
    err = capsys.readouterr().err
    assert code == errors.EXIT_BAD_INSTALLATION, err
    assert "damaged" in err and db.read_bytes() == before


def test_a_damaged_changed_table_is_caught_by_the_check_of_the_original(install, tmp_path, large):
    root = install(1)
    damage_index(folded(root), "caces")
    with pytest.raises(errors.UpgradeFailed) as failure:
        migrate(root, tmp_path)
    assert any("in the original" in d for d in failure.value.details) or "caces" in str(failure.value)


def test_the_value_proof_falls_back_to_the_primary_key_when_rowids_moved(install, tmp_path):
    """A rebuild that does not copy the rowid (as before) still passes on its values, and one that
    changes a value still fails: the rowid join only shortens the common case."""
    root = install(1)
    db = folded(root)
    with closing(apsw.Connection(str(db))) as conn:
        conn.execute("DELETE FROM caces WHERE rowid % 2 = 0")
    with closing(apsw.Connection(":memory:")) as conn:
        conn.execute(f"ATTACH DATABASE '{db}' AS original")
        conn.execute("CREATE TABLE caces AS SELECT * FROM original.caces ORDER BY id")  # new rowids
        old, new = read_schema(conn, "original").table("caces"), read_schema(conn).table("caces")
        columns = list(old.column_names)
        assert validator._differing_rows(conn, "original", old, new, columns) == 0
        conn.execute("UPDATE caces SET kind = kind || 'x' WHERE rowid = 3")
        assert validator._differing_rows(conn, "original", old, new, columns) == 1


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT x FROM t ORDER BY x DESC;",
        "-- the list\nSELECT x FROM t WHERE x > :low",
        "WITH u AS (SELECT x FROM t) SELECT * FROM u;",
        "SELECT x FROM t; -- a note",
        "SELECT x FROM t UNION ALL SELECT x FROM t WHERE 0",
    ],
)
def test_an_app_list_is_read_to_its_last_row_counted_by_sqlite(sql):
    with closing(apsw.Connection(":memory:")) as conn:
        conn.execute(
            "CREATE TABLE t(x); INSERT INTO t SELECT value FROM generate_series(1, 500)"
            if conn.execute("SELECT count(*) FROM pragma_module_list WHERE name = 'generate_series'").fetchone()[0]
            else "CREATE TABLE t(x); WITH RECURSIVE n(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM n WHERE v < 500) "
            "INSERT INTO t SELECT v FROM n"
        )
        assert validator._read_to_the_end(conn.cursor(), sql, {"low": 0}) == 500


def test_an_app_list_that_fails_fails_with_its_own_error():
    with closing(apsw.Connection(":memory:")) as conn:
        conn.execute("CREATE TABLE t(x)")
        with pytest.raises(apsw.SQLError, match="no such column: y"):
            validator._read_to_the_end(conn.cursor(), "SELECT y FROM t;", {})
        with pytest.raises(KeyError):
            validator._read_to_the_end(conn.cursor(), "SELECT x FROM t WHERE x = :missing", {})


@pytest.mark.parametrize(
    "old_key,checked",
    [
        ("id TEXT PRIMARY KEY", {"parent"}),
        ("id INTEGER PRIMARY KEY", {"parent", "child"}),
        ("id TEXT COLLATE NOCASE PRIMARY KEY", {"parent", "child"}),
    ],
)
def test_tables_pointing_into_a_changed_key_have_their_references_checked(tmp_path, old_key, checked):
    """A changed table whose key is as it was still holds every parent row (the values check); if its
    key's type or collation changed, lookups from the tables pointing into it may not find them."""
    with closing(apsw.Connection(str(tmp_path / "original.db"))) as conn:
        conn.execute(
            f"CREATE TABLE parent({old_key}, name TEXT NOT NULL); "
            "CREATE TABLE child(parent_id TEXT REFERENCES parent(id))"
        )
    with closing(apsw.Connection(str(tmp_path / "new.db"))) as conn:
        conn.execute(
            "CREATE TABLE parent(id TEXT PRIMARY KEY, name TEXT); "
            "CREATE TABLE child(parent_id TEXT REFERENCES parent(id))"
        )
        conn.execute(f"ATTACH DATABASE '{tmp_path / 'original.db'}' AS original")
        assert validator._reference_scope(conn, "original", frozenset({"parent"})) == checked


@pytest.mark.parametrize(
    "flags, whole",
    [([], False), (["--full-check"], True), (["--dry-run"], False), (["--dry-run", "--full-check"], True)],
)
def test_the_full_check_flag_reaches_the_checks_of_a_real_upgrade(install, large, capsys, flags, whole):
    from upgrader.cli import main

    root = install(6)
    assert main(["--yes", "--json", "--data-dir", str(root), *flags]) == 0
    (integrity,) = [c for c in json.loads(capsys.readouterr().out)["checks"] if c["name"] == "integrity"]
    assert ("the whole file" in integrity["detail"]) is whole
    assert ("was not checked: --full-check checks it" in integrity["detail"]) is not whole


def lists_and_writes(checks) -> tuple[str, list[str]]:
    app = check(checks, validator.APP_OPERATIONS)
    assert app.ok, app
    return app.detail, list(app.items)


@pytest.mark.parametrize("full_check", [False, True])
def test_the_app_lists_of_a_large_file_are_bounded_unless_full_check(install, tmp_path, large, monkeypatch, full_check):
    monkeypatch.setattr(validator, "LIST_STEP_BUDGET", 200)
    root = install(6)
    _outcomes, checks = migrate(root, tmp_path, full_check)
    detail, ran = lists_and_writes(checks)
    assert f"{len(ran)} of {len(ran)} of the app's operations" in detail
    if full_check:
        assert "stopped" not in detail
        return
    stopped, whole = detail.split("not read to their last row", 1)[1].split("; run in full: ")
    bounded = [name for name in ran if name in stopped]
    assert bounded and "list active employees" in bounded, detail
    assert all(not name.startswith(("add ", "update ", "archive ")) for name in bounded), "writes run in full"
    assert all(name in whole for name in ran if name not in bounded), detail
    assert "--full-check reads them whole" in detail
    with closing(apsw.Connection(str(tmp_path / "work.db"))) as conn:
        assert read_schema(conn).table("contracts") is not None, "the upgrade committed all the same"


def test_a_small_file_reads_every_app_list_to_its_last_row(install, tmp_path, monkeypatch):
    monkeypatch.setattr(validator, "LIST_STEP_BUDGET", 200)
    detail, _ran = lists_and_writes(migrate(install(6), tmp_path)[1])
    assert "stopped" not in detail and "ran on the upgraded data, then were undone" in detail


def many_rows(conn: apsw.Connection) -> None:
    conn.execute(
        "CREATE TABLE t(x); WITH RECURSIVE n(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM n WHERE v < 20000) "
        "INSERT INTO t SELECT v FROM n"
    )


def test_a_bounded_list_stops_without_undoing_the_transaction_it_runs_in():
    with closing(apsw.Connection(":memory:")) as conn:
        many_rows(conn)
        conn.execute("BEGIN; INSERT INTO t VALUES (-1)")
        assert validator._read_to_the_end(conn.cursor(), "SELECT x FROM t ORDER BY x DESC", {}, 1000) is None
        assert conn.in_transaction
        assert validator._read_to_the_end(conn.cursor(), "SELECT x FROM t WHERE x < 0", {}) == 1
        conn.execute("COMMIT")
        assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 20001


def test_a_write_or_a_list_within_its_budget_runs_in_full():
    with closing(apsw.Connection(":memory:")) as conn:
        many_rows(conn)
        conn.execute("BEGIN")
        cursor = conn.cursor()
        assert validator._read_to_the_end(cursor, "UPDATE t SET x = x + 1", {}, 1000) == 0
        assert conn.execute("SELECT min(x), max(x) FROM t").fetchone() == (2, 20001), "every row written"
        assert validator._read_to_the_end(cursor, "SELECT x FROM t WHERE x = 5", {}, 10_000_000) == 1
        conn.execute("ROLLBACK")
