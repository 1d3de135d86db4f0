"""What an upgrade costs, against a plain file copy: one command, interleaved runs, medians.

Usage:
  python bench/bench.py --size typical             # ~50 employees, 3 years (seconds)
  python bench/bench.py --size large --runs 3      # ~1 GB, mostly medical visits, CACES, trainings
  python bench/bench.py --size small --runs 1      # a few hundred KB: the smoke run of the test suite

For each of g6 (only the small employees table is rebuilt) and g1 (caces and medical_visits
are rebuilt too) it measures, each round in turn:
  cp         copy of the database file with fsync: the floor of any full backup
  raw_sql    the same migration SQL on a throwaway copy, at the tool's own settings (as
             upgrade.migrate_copy: on-disk rollback journal, synchronous=OFF), no backup, no checks
  backup     the verified backup alone (backup API + checksums + quick_check)
  dry_run    --dry-run through the Python package (and the binary, if built)
  upgrade    the full upgrade (backup + migrate + validate + config + swap), package and binary
  peers (g1 only, with the `bench` extra: pip install -e .[bench]): the g1 -> g2 rebuilds alone
    by sqlite-utils' table.transform() and by Alembic's batch mode (op.batch_alter_table);
    where their result differs from migrations/g2_*/schema.sql, the differences are printed
and the peak memory (max RSS) of the upgrader processes, and a breakdown of the last upgrade
run into phases from its log's timestamps. The generated installations keep data in a -wal
file (the large g6: about 94 MB), as a running app leaves it. It prints seconds and ratios and
writes them as JSON (default bench/results-<size>.json) for comparison between commits.
Generated installations are cached in the temp folder (a large one takes minutes to make).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import closing
from pathlib import Path

import apsw

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from upgrader.backup import create_backup  # noqa: E402
from upgrader.demo import create_installation  # noqa: E402
from upgrader.executor import in_transaction, run_steps  # noqa: E402
from upgrader.installation import locate  # noqa: E402
from upgrader.loader import load_catalog  # noqa: E402
from upgrader.planner import make_plan  # noqa: E402
from upgrader.snapshot import open_database  # noqa: E402

SIZES = {
    "small": dict(employees=60, years=2, visits_per_year=1),
    "typical": dict(employees=50, years=3, visits_per_year=1),
    "large": dict(employees=20000, years=10, visits_per_year=12),
}
GOALS = (
    "1 GB g6 (WAL present): upgrade <= 2.5x cp, dry run <= 2x cp; 1 GB g1: upgrade <= 1.3x (cp + raw_sql "
    "at the tool's settings) and faster than both peers; peak RSS <= 150 MB; typical: upgrade < 0.5 s "
    "through the binary"
)
CACHE = Path(tempfile.gettempdir()) / "wems-bench-cache"


def installation(size: str, generation: int) -> Path:
    """A pristine installation of `size` and `generation`, generated once and cached."""
    folder = CACHE / f"{size}-g{generation}"
    if not (folder / "data" / "employee_manager.db").exists():
        shutil.rmtree(folder, ignore_errors=True)
        print(f"generating the {size} g{generation} installation (cached in {folder})...", flush=True)
        create_installation(folder, generation, seed=7, **SIZES[size])
    return folder


def fresh_copy(source: Path, work: Path) -> Path:
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(source, work)
    settle()
    return work


def settle() -> None:
    """Let the disk catch up (POSIX sync) before a timed action, so that it does not pay for the writeback
    of the copies made before it: a cp of 1.1 GB took 2.4-3.1 s right after them, 0.85 s after a sync."""
    if hasattr(os, "sync"):
        os.sync()


def timed(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def cp_with_fsync(db: Path, scratch: Path) -> float:
    target = scratch / "cp.db"

    def copy():
        shutil.copyfile(db, target)
        with open(target, "rb+") as handle:
            os.fsync(handle.fileno())

    seconds = timed(copy)
    target.unlink()
    return seconds


def raw_sql(site: Path, scratch: Path) -> float:
    """The migration statements alone, on a checkpointed copy, with migrate_copy's settings."""
    catalog = load_catalog()
    db = locate(site, environ={}).database
    with closing(open_database(db)) as source:
        plan = make_plan(source, catalog, catalog.latest)
        copy = scratch / "raw.db"
        target = apsw.Connection(str(copy))
        with target.backup("main", source, "main") as backup:
            backup.step(-1)
        target.close()
    conn = apsw.Connection(str(copy))
    try:
        conn.execute("PRAGMA journal_mode=DELETE").fetchall()  # as upgrade.migrate_copy
        conn.execute("PRAGMA synchronous=OFF")
        steps = list(plan.steps)
        return timed(
            lambda: in_transaction(conn, lambda c: run_steps(c, steps, plan.target.schema), lambda c, _o: None)
        )
    finally:
        conn.close()
        copy.unlink()


def checkpointed_copy(site: Path, target: Path) -> Path:
    """A self-contained copy of the site's database (WAL folded in), made with the backup API."""
    with closing(open_database(locate(site, environ={}).database)) as source:
        conn = apsw.Connection(str(target))
        with conn.backup("main", source, "main") as backup:
            backup.step(-1)
        conn.execute("PRAGMA journal_mode=DELETE").fetchall()
        conn.close()
    return target


PEERS = ("sqlite_utils", "alembic")
#: the g1 -> g2 change both peers make: document_path becomes nullable in these tables
G2_NULLABLE = ("caces", "medical_visits")


def peer_sqlite_utils(db: Path) -> None:
    import sqlite_utils

    database = sqlite_utils.Database(str(db))
    for table in G2_NULLABLE:
        database[table].transform(not_null={"document_path": False})
    database.close()


def peer_alembic(db: Path) -> None:
    import sqlalchemy
    from alembic.migration import MigrationContext
    from alembic.operations import Operations

    engine = sqlalchemy.create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        operations = Operations(MigrationContext.configure(conn))
        for table in G2_NULLABLE:
            with operations.batch_alter_table(table) as batch:
                batch.alter_column("document_path", existing_type=sqlalchemy.String(255), nullable=True)
    engine.dispose()


def peer(name: str, site: Path, scratch: Path) -> tuple[float, list[str]]:
    """Seconds of a peer's g1 -> g2 rebuilds on a checkpointed copy, and how its result differs
    from migrations/g2_*/schema.sql (empty: identical by the tool's own comparison). Run in a
    child process: SQLAlchemy loaded here would count in the upgraders' peak memory (a child's
    max RSS includes what it inherits at fork)."""
    db = checkpointed_copy(site, scratch / f"{name}.db")
    try:
        done = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--peer", name, str(db)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"peer {name} failed: {done.stderr[-2000:]}")
        result = json.loads(done.stdout)
        return result["seconds"], result["differences"]
    finally:
        db.unlink(missing_ok=True)


def run_peer(name: str, db: Path) -> None:
    """In the child: time the peer on `db`, then compare its schema with g2's; print JSON."""
    from upgrader.schema import differences, read_schema

    __import__({"sqlite_utils": "sqlite_utils", "alembic": "alembic.operations"}[name])  # not timed
    if name == "alembic":
        __import__("sqlalchemy")
    seconds = timed(lambda: {"sqlite_utils": peer_sqlite_utils, "alembic": peer_alembic}[name](db))
    with closing(apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)) as conn:
        problems = differences(read_schema(conn), load_catalog().step(2).schema)
    print(json.dumps({"seconds": seconds, "differences": problems}))


def available_peers() -> list[str]:
    found = []
    for name, module in (("sqlite_utils", "sqlite_utils"), ("alembic", "alembic")):
        try:
            __import__(module)
            found.append(name)
        except ImportError:
            print(f"peer {name} not installed (pip install -e .[bench]): not measured", flush=True)
    return found


#: (phase, the log message that ends it), in the order of an upgrade's log
PHASES = (
    ("plan", "settings "),
    ("fold", "folded: "),
    ("copy and hash", "copied and hashed: "),
    ("backup folder", "migrating the copy"),
    ("migration SQL", None),
    ("checks", "checks: "),
    ("app operations", "checks: "),
    ("swap and settings", "upgraded to "),
)


#: a log line after its time: the level, the logger's name (upgrader.*, from 6cd2e2e on), the message
_LOG_MESSAGE = re.compile(r"\S+ (?:upgrader(?:\.\w+)* )?(.*)")


def phases(log: Path, wall: float) -> dict[str, float]:
    """Seconds per phase of one upgrade, from its log's timestamps (each message marks a phase's
    end; the migration SQL ends with the last line before the first checks)."""
    from datetime import datetime

    lines = []
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            lines.append((datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f"), _LOG_MESSAGE.match(line[24:])[1]))
        except (ValueError, IndexError, TypeError):
            continue
    if not lines:
        return {}
    out, previous, i = {}, lines[0][0], 0
    for name, marker in PHASES:
        if marker is None:  # up to the line before the next marker's
            j = next((k for k in range(i, len(lines)) if lines[k][1].startswith("checks: ")), None)
            if j is None or j == 0:
                return out
            i = j - 1
        else:
            j = next(
                (k for k in range(i + (name == "app operations"), len(lines)) if lines[k][1].startswith(marker)), None
            )
            if j is None:
                return out
            i = j
        out[name] = (lines[i][0] - previous).total_seconds()
        previous = lines[i][0]
    out["start-up and exit"] = max(0.0, wall - (previous - lines[0][0]).total_seconds())
    return out


def backup_only(site: Path, scratch: Path) -> float:
    install = locate(site, environ={})
    with closing(open_database(install.database)) as source:
        seconds = timed(lambda: create_backup(install, source, "bench", {}, scratch / "backups"))
    shutil.rmtree(scratch / "backups")
    return seconds


def run_command(command: list[str]) -> tuple[float, int]:
    """Wall seconds and peak memory (KB: max RSS, or the peak working set on Windows) of a child process."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if os.name == "nt":
        errors: list[bytes] = []
        reader = threading.Thread(target=lambda: errors.append(process.stderr.read()), daemon=True)
        reader.start()
        peak = _wait_windows(process)
        seconds = time.perf_counter() - started
        reader.join(5)  # under Wine a helper of the child's console can keep the pipe open for good
        err = b"".join(errors)
    elif Path(f"/proc/{process.pid}/status").exists():
        errors = []
        reader = threading.Thread(target=lambda: errors.append(process.stderr.read()), daemon=True)
        reader.start()
        peak = _wait_linux(process)
        seconds = time.perf_counter() - started
        reader.join()
        err = b"".join(errors)
    else:
        _pid, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode, peak = os.waitstatus_to_exitcode(status), usage.ru_maxrss
        err = process.stderr.read()
        process.stderr.close()
    if process.returncode != 0:
        raise RuntimeError(f"{command} failed: {err.decode(errors='replace')[-2000:]}")
    return seconds, peak


def _wait_linux(process: subprocess.Popen) -> int:
    """Wait for the process, reading the VmHWM (KB) of it and its descendants while it runs (the
    one-file binary's work is done by a child of its bootloader), and return the largest sum.
    Not ru_maxrss: a child started by vfork/posix_spawn reports the parent's peak too, so the
    benchmark's own memory would count."""
    peaks: dict[int, int] = {}
    best = 0
    while process.poll() is None:
        for pid in _tree(process.pid):
            try:
                text = Path(f"/proc/{pid}/status").read_text()
                peaks[pid] = max(peaks.get(pid, 0), int(text.split("VmHWM:")[1].split()[0]))
            except (OSError, IndexError, ValueError):
                pass
        best = max(best, sum(peaks.values()))
        time.sleep(0.01)
    return best


def _tree(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                todo += [int(child) for child in (task / "children").read_text().split()]
            except (OSError, ValueError):
                pass
    return found


def _wait_windows(process: subprocess.Popen) -> int:
    """Wait for the process, reading its peak working set while it runs (Wine reports 0 once it has exited)."""
    peak = 0
    while process.poll() is None:
        peak = max(peak, _windows_peak_kb(process))
        time.sleep(0.02)
    return max(peak, _windows_peak_kb(process))


def _windows_peak_kb(process: subprocess.Popen) -> int:
    """PeakWorkingSetSize of the process so far, through K32GetProcessMemoryInfo."""
    import ctypes
    from ctypes import wintypes

    class Counters(ctypes.Structure):
        _fields_ = [
            ("cb", wintypes.DWORD),
            ("PageFaultCount", wintypes.DWORD),
            *(
                (name, ctypes.c_size_t)
                for name in (
                    "PeakWorkingSetSize",
                    "WorkingSetSize",
                    "QuotaPeakPagedPoolUsage",
                    "QuotaPagedPoolUsage",
                    "QuotaPeakNonPagedPoolUsage",
                    "QuotaNonPagedPoolUsage",
                    "PagefileUsage",
                    "PeakPagefileUsage",
                )
            ),
        ]

    counters = Counters(cb=ctypes.sizeof(Counters))
    get = ctypes.windll.kernel32.K32GetProcessMemoryInfo
    get.argtypes = [wintypes.HANDLE, ctypes.POINTER(Counters), wintypes.DWORD]
    if not get(int(process._handle), ctypes.byref(counters), counters.cb):
        return 0
    return counters.PeakWorkingSetSize // 1024


def commands(with_binary: bool = True) -> dict[str, list[str]]:
    found = {"package": [sys.executable, "-m", "upgrader"]}
    binary = ROOT / "build" / "out" / ("wems-upgrade.exe" if os.name == "nt" else "wems-upgrade")
    if with_binary and binary.exists():
        found["binary"] = [str(binary)]
    return found


def one_round(
    generation: int,
    source: Path,
    scratch: Path,
    samples: dict,
    peaks: dict,
    peers: list[str],
    extra: dict,
    with_binary: bool = True,
) -> None:
    db = locate(source, environ={}).database
    site = scratch / "site"
    settle()
    samples.setdefault("cp", []).append(cp_with_fsync(db, scratch))
    samples.setdefault("raw_sql", []).append(raw_sql(fresh_copy(source, site), scratch))
    samples.setdefault("backup", []).append(backup_only(fresh_copy(source, site), scratch))
    for name in peers if generation == 1 else []:
        seconds, problems = peer(name, fresh_copy(source, site), scratch)
        samples.setdefault(f"peer_{name}", []).append(seconds)
        extra.setdefault("peer_schema_differences", {})[name] = problems
    for name, command in commands(with_binary).items():
        for what, args in (("dry_run", ["--dry-run"]), ("upgrade", ["--yes", "--no-color"])):
            fresh_copy(source, site)
            seconds, rss = run_command(command + ["--data-dir", str(site)] + args)
            samples.setdefault(f"{what}_{name}", []).append(seconds)
            peaks[name] = max(peaks.get(name, 0), rss)
            logs = sorted((site / "logs").glob("*.log"), key=lambda f: f.stat().st_mtime)
            if what == "upgrade" and name == "package" and logs:
                samples.setdefault("phases", []).append(phases(logs[-1], seconds))


def measure(size: str, generation: int, runs: int, with_binary: bool = True) -> dict:
    source = installation(size, generation)
    scratch = Path(tempfile.mkdtemp(prefix="wems-bench-"))
    samples, peaks, extra = {}, {}, {}
    peers = available_peers() if generation == 1 else []
    try:
        for _ in range(runs):
            one_round(generation, source, scratch, samples, peaks, peers, extra, with_binary)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    breakdown = samples.pop("phases", [])
    medians = {name: statistics.median(values) for name, values in samples.items()}
    db = locate(source, environ={}).database
    wal = Path(f"{db}-wal")
    wal_mb = (wal.stat().st_size if wal.exists() else 0) / 1e6
    return {
        "generation": f"g{generation}",
        "database_mb": round(db.stat().st_size / 1e6 + wal_mb, 1),
        "wal_mb": round(wal_mb, 1),
        "runs": runs,
        "seconds": {k: round(v, 3) for k, v in medians.items()},
        "ratios": ratios(medians),
        "peak_rss_mb": {k: round(v / 1024, 1) for k, v in peaks.items()},
        "upgrade_phases_seconds": {
            k: round(statistics.median(b.get(k, 0.0) for b in breakdown), 3)
            for k in (breakdown[0] if breakdown else {})
        },
        **extra,
    }


def ratios(m: dict) -> dict:
    out = {}
    for name in [k for k in m if k.startswith(("upgrade_", "dry_run_"))]:
        out[f"{name} / cp"] = round(m[name] / m["cp"], 2)
        out[f"{name} / (cp + raw_sql)"] = round(m[name] / (m["cp"] + m["raw_sql"]), 2)
        for peer_name in [k for k in m if k.startswith("peer_")]:
            out[f"{name} / {peer_name}"] = round(m[name] / m[peer_name], 2)
    return out


def print_table(size: str, results: list[dict]) -> None:
    print(f"\nsize: {size}    goals: {GOALS}")
    for result in results:
        print(
            f"\n{result['generation']}  database {result['database_mb']} MB (of which -wal {result['wal_mb']} MB), "
            f"median of {result['runs']} run(s)"
        )
        for name, seconds in result["seconds"].items():
            print(f"  {name:<22}{seconds:>9.3f} s")
        for name, ratio in result["ratios"].items():
            print(f"  {name:<40}{ratio:>6.2f}x")
        for name, mb in result["peak_rss_mb"].items():
            print(f"  peak memory ({name}){'':<8}{mb:>8.1f} MB")
        if result["upgrade_phases_seconds"]:
            print(
                "  upgrade phases (package, from its log): "
                + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in result["upgrade_phases_seconds"].items())
            )
        for name, problems in result.get("peer_schema_differences", {}).items():
            print(
                f"  {name}'s g2 schema: "
                + (
                    "identical to migrations/g2"
                    if not problems
                    else "differs from migrations/g2: " + "; ".join(problems)
                )
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=SIZES, default="typical")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--generations", default="6,1", help="comma-separated, default 6,1")
    parser.add_argument("--json", type=Path, help="where to write the results (default bench/results-<size>.json)")
    parser.add_argument("--without-binary", action="store_true", help="measure the Python package only")
    parser.add_argument("--peer", nargs=2, metavar=("NAME", "DB"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peer:
        run_peer(args.peer[0], Path(args.peer[1]))
        return
    results = [measure(args.size, int(g), args.runs, not args.without_binary) for g in args.generations.split(",")]
    print_table(args.size, results)
    path = args.json or ROOT / "bench" / f"results-{args.size}.json"
    path.write_text(
        json.dumps({"size": args.size, "goals": GOALS, "results": results}, indent=2) + "\n", encoding="utf-8"
    )
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    main()
