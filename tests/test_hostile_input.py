"""Hostile and damaged input: each ends in its documented refusal, as a user sees it: a plain
message, the right exit code, no traceback, with --json exactly one JSON object, and every
file of the installation as it was."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import subprocess
import sys
from contextlib import closing
from datetime import datetime, timedelta, timezone
from pathlib import Path

import apsw
import pytest
from support import database, execute, file_digests

from upgrader import errors
from upgrader.backup import MANIFEST, list_backups
from upgrader.cli import main
from upgrader.validator import row_counts


def run(root: Path | None, capsys, *args, json_output: bool = True) -> tuple[int, dict | str]:
    """Run wems-upgrade on `root`; check no traceback, one JSON object (with --json) and no file changed."""
    before = file_digests(root) if root else None
    folder = ["--data-dir", str(root)] if root else []
    code = main(["--yes", *(["--json"] if json_output else []), *folder, *args])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err and "Logging error" not in err
    if root:
        assert file_digests(root) == before, "a refusal must leave every file as it was"
    if not json_output:
        return code, out + err
    obj = json.loads(out)
    assert isinstance(obj, dict) and obj["exit_code"] == code
    return code, obj


def message(obj: dict) -> str:
    error = obj["error"]
    return " ".join([error["message"], *error["details"], error["advice"]])


def refused_both_ways(root: Path, capsys, *args) -> tuple[int, str]:
    """The exit code and the text of a refusal, checked identical with and without --json."""
    code, obj = run(root, capsys, *args)
    text_code, err = run(root, capsys, *args, json_output=False)
    assert text_code == code and obj["error"]["message"].split(":")[0] in err
    return code, message(obj)


def without_wal(root: Path) -> Path:
    """Fold the demo's pending WAL into the database and leave WAL mode: one self-contained file."""
    db = database(root)
    with closing(apsw.Connection(str(db))) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        conn.execute("PRAGMA journal_mode=DELETE").fetchall()
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    return db


def edit_schema(db: Path, old: str, new: str, sql: str) -> None:
    """Run `sql` while the schema text says `new` instead of `old`, then put `old` back: what a
    buggy tool or a damaged file leaves behind (rows that break the declared constraints)."""
    for before, after, then in ((old, new, sql), (new, old, None)):
        with closing(apsw.Connection(str(db))) as conn:
            conn.execute("PRAGMA writable_schema=ON")
            conn.execute("UPDATE sqlite_master SET sql = replace(sql, ?, ?)", (before, after))
            conn.execute("PRAGMA writable_schema=OFF")
        if then:
            with closing(apsw.Connection(str(db))) as conn:
                conn.execute(then)


# --- a damaged installation is the installation's fault, not the backup's ---------------------


def _corrupt_a_table_page(db: Path) -> None:
    with closing(apsw.Connection(str(db))) as conn:
        (root_page,) = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'caces'").fetchone()
        (page_size,) = conn.execute("PRAGMA page_size").fetchone()
    with open(db, "r+b") as handle:
        handle.seek((root_page - 1) * page_size + 8)
        handle.write(b"\xff\x00\xff\x13" * 16)


DAMAGE = {
    "corrupt pages": lambda db: _corrupt_a_table_page(db),
    "NULL in a NOT NULL column": lambda db: edit_schema(
        db,
        '"kind" VARCHAR(255) NOT NULL',
        '"kind" VARCHAR(255)',
        "UPDATE caces SET kind = NULL WHERE rowid = (SELECT min(rowid) FROM caces)",
    ),
    "duplicate in a UNIQUE index": lambda db: edit_schema(
        db,
        'CREATE UNIQUE INDEX "employee_external_id"',
        'CREATE INDEX "employee_external_id"',
        "UPDATE employees SET external_id = (SELECT max(external_id) FROM employees) "
        "WHERE rowid = (SELECT min(rowid) FROM employees)",
    ),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_database_is_blamed_on_the_installation_not_on_the_backup(install, capsys, damage):
    root = install(7)
    db = without_wal(root)
    DAMAGE[damage](db)
    code, text = refused_both_ways(root, capsys)
    assert code == errors.EXIT_BAD_INSTALLATION, text
    assert str(db) in text and "choose another backup" not in text.lower()
    assert not any((root / "backups").glob("*")), "the backup of a damaged database is not kept"


@pytest.mark.parametrize("mode", ["--dry-run", "--no-backup"])
@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_database_is_blamed_on_the_installation_without_a_backup_too(install, capsys, damage, mode):
    """No backup is made, so the damage surfaces in the migration or its checks: still exit 3."""
    root = install(1)
    db = without_wal(root)
    DAMAGE[damage](db)
    code, text = refused_both_ways(root, capsys, mode)
    assert code == errors.EXIT_BAD_INSTALLATION, text
    assert str(db) in text and "damaged" in text


# --- a change cut short (a hot -journal) -----------------------------------------------------


def _leave_hot_journal(db: Path) -> None:
    """A process that dies in the middle of a write leaves a -journal SQLite must roll back."""
    script = (
        "import apsw, os, sys\n"
        "conn = apsw.Connection(sys.argv[1])\n"
        "conn.execute('PRAGMA cache_size=1')\n"
        "conn.execute('BEGIN')\n"
        "conn.execute(\"UPDATE employees SET first_name = 'TORN' || hex(randomblob(2000))\")\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", script, str(db)], check=True)
    assert Path(f"{db}-journal").read_bytes()[:8] == bytes.fromhex("d9d505f920a163d7"), "a hot journal"


@pytest.mark.parametrize("mode", ["--dry-run", "--status"])
def test_a_change_cut_short_is_reported_by_dry_run_and_status(install, capsys, mode):
    root = install(6)
    db = without_wal(root)
    _leave_hot_journal(db)
    code, text = refused_both_ways(root, capsys, mode)
    assert code == errors.EXIT_IN_USE, text
    assert "cut short" in text and "without --dry-run" in text


# --- inputs that crashed ------------------------------------------------------------------


def test_a_database_path_longer_than_sqlite_accepts_is_refused(install, tmp_path, capsys):
    root = install(8)
    deep = tmp_path.joinpath(*["d" * 200] * 6)
    deep.mkdir(parents=True)
    os.replace(database(root), deep / "employee_manager.db")
    for suffix in ("-wal", "-shm"):
        Path(f"{root / 'data' / 'employee_manager.db'}{suffix}").unlink(missing_ok=True)
    (root / ".env").write_text(f"DATABASE_PATH={deep / 'employee_manager.db'}\n", encoding="utf-8")
    code, text = refused_both_ways(root, capsys, "--dry-run")
    assert code == errors.EXIT_BAD_INSTALLATION, text
    assert "too long" in text


def _heartbeat(root: Path, when: str) -> None:
    execute(
        root, f"INSERT INTO app_locks VALUES ('z', 'PC-QUAI', 'helene', '2026-01-01 08:00:00', '{when}', 42, '2.3.2')"
    )


@pytest.mark.parametrize("offset", [timedelta(0), timedelta(hours=-5), timedelta(hours=9)])
def test_a_fresh_heartbeat_written_with_a_utc_offset_means_the_app_is_open(install, capsys, offset):
    root = install(8)
    now = datetime.now(timezone(offset)).isoformat(timespec="seconds")
    _heartbeat(root, now)
    code, text = refused_both_ways(root, capsys, "--dry-run")
    assert code == errors.EXIT_IN_USE, text
    assert "Wareflow EMS is open" in text


def test_an_old_heartbeat_written_with_a_utc_offset_is_only_stale(install, capsys):
    root = install(8)
    _heartbeat(root, "2026-01-01T08:00:00+00:00")
    code, obj = run(root, capsys, "--dry-run")
    assert code == errors.EXIT_OK, obj


HISTORY = {
    "text generation": "CREATE TABLE wems_upgrade_history (id INTEGER PRIMARY KEY, generation TEXT, step TEXT, "
    "upgrader_version TEXT); INSERT INTO wems_upgrade_history VALUES (1, 'g9', 'g9_x', '9')",
    "missing columns": "CREATE TABLE wems_upgrade_history (id INTEGER PRIMARY KEY, note TEXT); "
    "INSERT INTO wems_upgrade_history VALUES (1, 'hello')",
    "NULL generation": "CREATE TABLE wems_upgrade_history (id INTEGER PRIMARY KEY, run_at TEXT, "
    "upgrader_version TEXT, generation INTEGER, step TEXT, checksum TEXT, "
    "operations_applied INTEGER, operations_skipped INTEGER); "
    "INSERT INTO wems_upgrade_history (id, generation) VALUES (1, NULL)",
}


@pytest.mark.parametrize("shape", HISTORY)
def test_a_history_table_of_another_shape_is_refused_as_unknown(install, capsys, shape):
    root = install(6)
    execute(root, HISTORY[shape])
    code, text = refused_both_ways(root, capsys, "--dry-run")
    assert code == errors.EXIT_UNKNOWN_SCHEMA, text
    assert "wems_upgrade_history" in text


@pytest.mark.parametrize(
    "name,text",
    [
        ("config.json", '{"a": ' * 5000 + "1" + "}" * 5000),
        ("config.json", "[" * 100000 + "]" * 100000),
        ("config.yaml", "a: " + "[" * 5000 + "]" * 5000 + "\n"),
        ("config.yaml", "".join(f"{'  ' * i}k{i}:\n" for i in range(150)) + "  " * 150 + "v: 1\n"),
    ],
)
def test_settings_nested_too_deeply_are_refused(install, capsys, name, text):
    root = install(8)
    (root / "config.yaml").unlink()
    (root / name).write_text(text, encoding="utf-8")
    code, message_text = refused_both_ways(root, capsys, "--dry-run")
    assert code == errors.EXIT_BAD_CONFIG, message_text
    assert "nested more than 100 levels" in message_text and "line" in message_text


@pytest.mark.parametrize(
    "name,text,line",
    [
        ("config.json", '{\n  "lock": {\n    "timeout_minutes": 1' + "0" * 5000 + "\n  }\n}\n", 3),
        ("config.json", '{\n  "lock": {\n    "timeout_minutes": 1' + "0" * 400 + "\n  }\n}\n", 3),
        ("config.yaml", "lock:\n  timeout_minutes: 1" + "0" * 5000 + "\n", 2),
        ("config.yaml", "alerts:\n  critical_days: 1\n  warning_days: 1" + "0" * 30 + "\n", 3),
    ],
)
def test_a_huge_number_in_the_settings_is_refused_at_its_line(install, capsys, name, text, line):
    root = install(8)
    (root / "config.yaml").unlink()
    (root / name).write_text(text, encoding="utf-8")
    code, message_text = refused_both_ways(root, capsys, "--dry-run")
    assert code == errors.EXIT_BAD_CONFIG, message_text
    assert f"line {line}" in message_text


def test_a_nul_character_in_env_is_refused(install, capsys):
    root = install(8)
    (root / ".env").write_bytes(b"# settings\nDATABASE_PATH=data/employee\x00_manager.db\n")
    code, text = refused_both_ways(root, capsys, "--dry-run")
    assert code == errors.EXIT_BAD_INSTALLATION, text
    assert ".env" in text and "line 2" in text


# --- backups and restores -------------------------------------------------------------------


@pytest.fixture
def backed_up(install, capsys):
    """A g7 installation upgraded once, so it has one real backup: (root, backup folder)."""
    root = install(7)
    assert main(["--yes", "--data-dir", str(root)]) == errors.EXIT_OK
    capsys.readouterr()
    (folder,) = (root / "backups").iterdir()
    return root, folder


@pytest.mark.parametrize("inside", [MANIFEST, "employee_manager.db"])
def test_restore_given_a_file_names_the_folder_to_give(backed_up, capsys, inside):
    root, folder = backed_up
    code, text = refused_both_ways(root, capsys, "--restore", str(folder / inside))
    assert code == errors.EXIT_BAD_BACKUP, text
    assert "folder" in text and str(folder) in text


def _rewrite_manifest(folder: Path, change) -> None:
    manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    change(manifest)
    (folder / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")


WRONG_TYPES = {
    "installation is a number": lambda m: m.update(installation=5),
    "kind is a list": lambda m: m.update(kind=["before_upgrade"]),
    "size is true": lambda m: m["files"][0].update(size=True),
    "role is missing": lambda m: m["files"][0].pop("role"),
    "row count is text": lambda m: m["row_counts"].update(employees="50"),
    "created_at is a number": lambda m: m.update(created_at=2026),
    "generation_before is a dict": lambda m: m.update(generation_before={"g": 7}),
    "files hold a list": lambda m: m.update(files=[[1, 2]]),
}


@pytest.mark.parametrize("wrong", WRONG_TYPES)
def test_a_manifest_with_fields_of_the_wrong_type_is_refused(backed_up, capsys, wrong):
    root, folder = backed_up
    _rewrite_manifest(folder, WRONG_TYPES[wrong])
    code, text = refused_both_ways(root, capsys, "--restore", str(folder))
    assert code == errors.EXIT_BAD_BACKUP, text
    code, obj = run(root, capsys, "--list-backups")
    assert code == errors.EXIT_OK and obj["backups"] == []


def test_a_backup_of_another_programs_database_is_refused(backed_up, capsys, tmp_path):
    root, folder = backed_up
    db = folder / "employee_manager.db"
    db.unlink()
    with closing(apsw.Connection(str(db))) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL); INSERT INTO invoices VALUES (1, 2.5)")
        counts = row_counts(conn)

    def consistent(manifest):
        manifest["row_counts"] = counts
        entry = next(f for f in manifest["files"] if f["role"] == "database")
        entry.update(size=db.stat().st_size, sha256=hashlib.sha256(db.read_bytes()).hexdigest())

    _rewrite_manifest(folder, consistent)
    code, text = refused_both_ways(root, capsys, "--restore", str(folder))
    assert code == errors.EXIT_BAD_BACKUP, text
    assert "not a Wareflow EMS database" in text


def test_to_version_with_restore_is_a_usage_error(backed_up, capsys):
    root, folder = backed_up
    code, text = refused_both_ways(root, capsys, "--restore", str(folder), "--to-version", "g7")
    assert code == errors.EXIT_USAGE, text
    assert "--to-version" in text


# --- an interrupted backup ------------------------------------------------------------------


def _interrupted_backup(root: Path) -> Path:
    """What a run killed while copying the database leaves: a folder of ours, a copy, no manifest."""
    from upgrader.backup import INCOMPLETE_MARKER

    folder = root / "backups" / "before_upgrade_g8_20260101-120000"
    folder.mkdir(parents=True)
    (folder / INCOMPLETE_MARKER).write_text("", encoding="utf-8")
    (folder / "employee_manager.db").write_bytes(database(root).read_bytes())
    return folder


def test_an_interrupted_backup_is_listed_as_incomplete(install, capsys):
    root = install(7)
    folder = _interrupted_backup(root)
    code, text = run(root, capsys, "--list-backups", json_output=False)
    assert code == errors.EXIT_OK and "incomplete" in text and str(folder) in text
    listed = list_backups(root / "backups")
    assert listed == [(folder, listed[0][1])] and "incomplete" in listed[0][1]
    code, obj = run(root, capsys, "--list-backups")
    assert obj["backups"] == [] and obj["unusable"] == [{"folder": str(folder), "reason": listed[0][1]}]


def test_the_next_upgrade_removes_an_interrupted_backup(install, capsys):
    root = install(7)
    folder = _interrupted_backup(root)
    other = root / "backups" / "my_own_folder"
    other.mkdir()
    (other / "notes.txt").write_text("mine", encoding="utf-8")
    assert main(["--yes", "--data-dir", str(root)]) == errors.EXIT_OK
    capsys.readouterr()
    assert not folder.exists() and other.exists()
    (log,) = (root / "logs").glob("wems-upgrade-*.log")
    assert folder.name in log.read_text(encoding="utf-8")


def test_a_backup_being_made_by_another_upgrader_is_not_removed(install, capsys):
    from upgrader.backup import INCOMPLETE_MARKER
    from upgrader.locks import hold_file_lock

    root = install(7)
    folder = _interrupted_backup(root)
    with hold_file_lock(folder / INCOMPLETE_MARKER):
        assert main(["--yes", "--data-dir", str(root)]) == errors.EXIT_OK
    capsys.readouterr()
    assert folder.exists()


# --- the log and the disk -------------------------------------------------------------------


class _FullDisk:
    """A log file on a full disk: every write and flush fails with ENOSPC."""

    def write(self, _text=None):
        raise OSError(errno.ENOSPC, "No space left on device")

    flush = write

    def close(self):
        pass


def test_a_log_that_cannot_be_written_never_changes_the_outcome(install, capsys, monkeypatch):
    root = install(3)
    monkeypatch.setattr("logging.FileHandler._open", lambda self: _FullDisk())
    code, obj = run(root, capsys, "--dry-run")
    assert code == errors.EXIT_OK and obj["status"] == "dry_run"
    assert main(["--yes", "--json", "--data-dir", str(root)]) == errors.EXIT_OK
    out, err = capsys.readouterr()
    assert json.loads(out)["status"] == "upgraded" and "Traceback" not in err


def test_a_full_disk_is_exit_10_even_when_the_log_cannot_be_written(install, capsys, monkeypatch):
    from collections import namedtuple

    root = install(1)
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr("logging.FileHandler._open", lambda self: _FullDisk())
    monkeypatch.setattr("upgrader.preflight.shutil.disk_usage", lambda _p: usage(10**9, 10**9, 0))
    code, text = refused_both_ways(root, capsys)
    assert code == errors.EXIT_NO_ROOM, text


# --- the command line -----------------------------------------------------------------------


@pytest.mark.parametrize("content", [None, b"\xff\xfe s\x00i\x00t\x00e\x00", "folder"])
def test_an_unreadable_sites_file_is_one_json_error(tmp_path, capsys, content):
    sites = tmp_path / "sites.txt"
    if content == "folder":
        sites.mkdir()
    elif content is not None:
        sites.write_bytes(content)
    code, obj = run(None, capsys, "--sites-file", str(sites))
    assert code == errors.EXIT_USAGE and str(sites) in message(obj)


@pytest.mark.parametrize("kind", ["folder", "file"])
def test_a_refused_demo_folder_is_one_json_error(tmp_path, capsys, kind):
    target = tmp_path / "mine"
    if kind == "folder":
        target.mkdir()
        (target / "precious.txt").write_text("keep", encoding="utf-8")
    else:
        target.write_text("keep", encoding="utf-8")
    code, obj = run(None, capsys, "--demo", str(target))
    assert code == errors.EXIT_USAGE and str(target) in message(obj)
    assert (target / "precious.txt" if kind == "folder" else target).read_text(encoding="utf-8") == "keep"


# --- settings files -------------------------------------------------------------------------


def test_an_empty_json_object_means_the_apps_defaults_and_is_converted(install, capsys):
    import yaml

    root = install(3)
    (root / "config.json").write_text("{}\n", encoding="utf-8")
    assert main(["--yes", "--data-dir", str(root)]) == errors.EXIT_OK
    capsys.readouterr()
    g3_roles = ["Cariste", "Préparateur", "Magasinier", "Réceptionnaire", "Gestionnaire", "Chef d'équipe"]
    assert yaml.safe_load((root / "config.yaml").read_text(encoding="utf-8")) == {"organization": {"roles": g3_roles}}
    assert (root / "config.json.before-wems-upgrade").read_text(encoding="utf-8") == "{}\n"


@pytest.mark.parametrize(
    "name,text,line",
    [
        ("config.json", '{\n  "lock": {"timeout_minutes": 5},\n  "lock": {"timeout_minutes": 9}\n}\n', 3),
        ("config.json", '{\n  "alerts": {\n    "critical_days": 5,\n    "critical_days": 6\n  }\n}\n', 4),
        ("config.yaml", "alerts:\n  critical_days: 5\n  warning_days: 30\n  critical_days: 6\n", 4),
        ("config.yaml", "lock:\n  timeout_minutes: 5\nlock:\n  timeout_minutes: 9\n", 3),
    ],
)
def test_a_key_written_twice_in_the_settings_is_refused(install, capsys, name, text, line):
    root = install(4 if name == "config.json" else 8)
    for old in ("config.json", "config.yaml"):
        (root / old).unlink(missing_ok=True)
    (root / name).write_text(text, encoding="utf-8")
    code, message_text = refused_both_ways(root, capsys, "--dry-run")
    assert code == errors.EXIT_BAD_CONFIG, message_text
    assert "is written twice" in message_text and f"line {line}, column" in message_text


@pytest.mark.parametrize("bom,codec", [(b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")])
def test_an_env_file_saved_as_utf16_is_refused_like_the_app_fails_on_it(install, capsys, bom, codec):
    root = install(8)
    (root / ".env").write_bytes(bom + "DATABASE_NAME=other.db\r\n".encode(codec))
    code, text = refused_both_ways(root, capsys, "--dry-run")
    assert code == errors.EXIT_BAD_INSTALLATION, text
    assert "UTF-16" in text and "UTF-8" in text
