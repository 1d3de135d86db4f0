"""Test helpers: ways to read, change and compare real WEMS installations on disk."""

from __future__ import annotations

import hashlib
import locale
from contextlib import closing
from pathlib import Path

import apsw

from upgrader.installation import locate

GENERATIONS = list(range(1, 9))

#: The encoding of a child process's text through a pipe: the ANSI code page on Windows (cp1252
#: on a French or English system), UTF-8 elsewhere. Only --json output is always UTF-8.
PIPE_ENCODING = locale.getpreferredencoding(False)


def database(root: Path) -> Path:
    return locate(root, environ={}).database


def file_digests(root: Path, *, except_backups: bool = False) -> dict[str, str]:
    """SHA-256 of every file in an installation, except SQLite's rebuildable -shm index and run logs.

    except_backups: leave out backups/, where a failed upgrade leaves the backup it made.
    """
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
        and not p.name.endswith("-shm")
        and not (except_backups and p.relative_to(root).parts[0] == "backups")
        and not is_run_log(p)
    }


def is_run_log(path: Path) -> bool:
    """wems-upgrade's own log of a run (logs/wems-upgrade-*.log), written even when it refuses."""
    return path.parent.name == "logs" and path.name.startswith("wems-upgrade-") and path.suffix == ".log"


def leftovers(root: Path) -> list[str]:
    """wems-upgrade's working files left in an installation (its backups, kept old settings and logs aside)."""
    return [
        p.name
        for p in root.rglob("*")
        if "wems-upgrade" in p.name
        and "backups" not in p.parts
        and not p.name.endswith(".before-wems-upgrade")
        and not is_run_log(p)
    ]


def query(root: Path, sql: str, params=()) -> list[tuple]:
    with closing(apsw.Connection(str(database(root)), flags=apsw.SQLITE_OPEN_READONLY)) as conn:
        return list(conn.execute(sql, params))


def execute(root: Path, sql: str) -> None:
    """Change an installation's database the way a user typing into sqlite3 would."""
    with closing(apsw.Connection(str(database(root)))) as conn:
        conn.execute(sql)


def table_rows(root: Path) -> dict[str, dict[str, dict]]:
    """Every row of every table, keyed by table then primary key, as {column: value}."""
    out = {}
    from upgrader.journal import roll_back_hot_journal

    roll_back_hot_journal(database(root))
    with closing(apsw.Connection(str(database(root)), flags=apsw.SQLITE_OPEN_READONLY)) as conn:
        tables = [
            r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")
        ]
        for table in tables:
            columns = [r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')]
            rows = conn.execute(f'SELECT rowid, * FROM "{table}"')
            out[table] = {}
            for rowid, *values in rows:
                record = dict(zip(columns, values, strict=True))
                out[table][record.get("id", rowid)] = record
    return out


def content(root: Path) -> dict:
    """What a user cares about: every row of every app table (bookkeeping times left out)."""
    rows = table_rows(root)
    rows.pop("wems_upgrade_history", None)
    for record in rows.get("migrations", {}).values():
        record.pop("applied_at")
    return rows


def after_a_failure(root: Path) -> tuple:
    """What an upgrade that fails after the confirmation leaves as it was: every row, and every file
    but the database's own and backups/ (it folded the WAL into the database: same rows, other bytes)."""
    return content(root), {
        name: digest
        for name, digest in file_digests(root, except_backups=True).items()
        if not Path(name).name.startswith("employee_manager.db")
    }


#: Filled by the crash matrix (tests/test_crash.py), reported at the end of the run by conftest.
CRASH_POINTS_TRIED: list[str] = []
