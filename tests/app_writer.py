"""Writes a WEMS database the way Wareflow EMS does, from a process of its own (for tests/test_races.py).

python app_writer.py DB COMMITTED_FILE [--count N] [--pause S] [--start S] [--seed N] [--end close|abandon|wait]

Opens DB as the app does (peewee on SQLite: journal_mode=WAL, a busy timeout), then N times
inserts an employee whose id is a unique marker, in a transaction, and commits; each marker is
appended to COMMITTED_FILE (flushed and fsynced) only once its COMMIT has returned. Then it
closes the database cleanly (close: the -wal is folded in and deleted), leaves without closing
(abandon: the -wal stays, as when the app is killed), or waits to be killed (wait).
Exit 0 when every commit went through, 3 when SQLite refused one (its marker is not recorded).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
import uuid
from datetime import datetime

import apsw

INSERT = (
    "INSERT INTO employees (id, first_name, last_name, current_status, workspace, role, "
    "contract_type, entry_date, created_at, updated_at) "
    "VALUES (?, 'Race', ?, 'actif', 'Quai', 'Cariste', 'CDI', '2026-01-05', ?, ?)"
)


def open_like_the_app(db: str) -> apsw.Connection:
    conn = apsw.Connection(db)
    conn.set_busy_timeout(5000)
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON"):
        conn.execute(f"PRAGMA {pragma}").fetchall()
    return conn


def commit_one(conn: apsw.Connection, marker: str) -> None:
    now = datetime.now().isoformat(sep=" ")
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(INSERT, (marker, marker, now, now))
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def record(path: str, marker: str) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(marker + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("db")
    parser.add_argument("committed")
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--start", type=float, default=0.0)
    parser.add_argument("--pause", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--end", choices=("close", "abandon", "wait"), default="close")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    time.sleep(args.start)
    try:
        conn = open_like_the_app(args.db)
        for _ in range(args.count):
            marker = f"race-{uuid.uuid4().hex}"
            commit_one(conn, marker)
            record(args.committed, marker)
            time.sleep(rng.uniform(0, args.pause))
    except apsw.Error as exc:
        print(f"app_writer: {type(exc).__name__}: {exc}", file=sys.stderr)
        os._exit(3)
    if args.end == "abandon":
        os._exit(0)
    if args.end == "wait":
        time.sleep(600)
    conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
