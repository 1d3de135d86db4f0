"""What an upgrade costs, against a plain file copy: one command, interleaved runs, medians.

Usage:
  python bench/bench.py --size typical             # ~50 employees, 3 years (seconds)
  python bench/bench.py --size large --runs 3      # ~1 GB, mostly medical visits, CACES, trainings
  python bench/bench.py --size small --runs 1      # a few hundred KB: the smoke run of the test suite

For each of g6 (only the small employees table is rebuilt) and g1 (caces and medical_visits
are rebuilt too) it measures, each round in turn:
  cp         copy of the database file with fsync: the floor of any full backup
  raw_sql    the same migration SQL on a throwaway copy, journal_mode=OFF, no backup, no checks
  backup     the verified backup alone (backup API + checksums + quick_check)
  dry_run    --dry-run through the Python package (and the binary, if built)
  upgrade    the full upgrade (backup + migrate + validate + config + swap), package and binary
and the peak memory (max RSS) of the upgrader processes. It prints seconds and ratios and
writes them as JSON (default bench/results-<size>.json) for comparison between commits.
Generated installations are cached in the temp folder (a large one takes minutes to make).
"""

from __future__ import annotations

import argparse
import json
import os
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

SIZES = {"small": dict(employees=60, years=2, visits_per_year=1),
         "typical": dict(employees=50, years=3, visits_per_year=1),
         "large": dict(employees=20000, years=10, visits_per_year=12)}
GOALS = "1 GB g6: upgrade and dry run <= 3x cp; 1 GB g1: upgrade <= 1.5x (cp + raw_sql); " \
        "peak memory < 150 MB; typical: upgrade < 2 s through the binary"
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
    return work


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
    """The migration statements alone, on a checkpointed copy with no journal."""
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
        conn.execute("PRAGMA journal_mode=OFF").fetchall()
        steps = list(plan.steps)
        return timed(lambda: in_transaction(conn, lambda c: run_steps(c, steps, plan.target.schema),
                                            lambda c, _o: None))
    finally:
        conn.close()
        copy.unlink()


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
    else:
        _pid, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode, peak = os.waitstatus_to_exitcode(status), usage.ru_maxrss
        err = process.stderr.read()
        process.stderr.close()
    if process.returncode != 0:
        raise RuntimeError(f"{command} failed: {err.decode(errors='replace')[-2000:]}")
    return seconds, peak


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
        _fields_ = [("cb", wintypes.DWORD), ("PageFaultCount", wintypes.DWORD),
                    *((name, ctypes.c_size_t) for name in (
                        "PeakWorkingSetSize", "WorkingSetSize", "QuotaPeakPagedPoolUsage", "QuotaPagedPoolUsage",
                        "QuotaPeakNonPagedPoolUsage", "QuotaNonPagedPoolUsage", "PagefileUsage",
                        "PeakPagefileUsage"))]

    counters = Counters(cb=ctypes.sizeof(Counters))
    get = ctypes.windll.kernel32.K32GetProcessMemoryInfo
    get.argtypes = [wintypes.HANDLE, ctypes.POINTER(Counters), wintypes.DWORD]
    if not get(int(process._handle), ctypes.byref(counters), counters.cb):
        return 0
    return counters.PeakWorkingSetSize // 1024


def commands() -> dict[str, list[str]]:
    found = {"package": [sys.executable, "-m", "upgrader"]}
    binary = ROOT / "build" / "out" / ("wems-upgrade.exe" if os.name == "nt" else "wems-upgrade")
    if binary.exists():
        found["binary"] = [str(binary)]
    return found


def one_round(generation: int, source: Path, scratch: Path, samples: dict, peaks: dict) -> None:
    db = locate(source, environ={}).database
    site = scratch / "site"
    samples.setdefault("cp", []).append(cp_with_fsync(db, scratch))
    samples.setdefault("raw_sql", []).append(raw_sql(fresh_copy(source, site), scratch))
    samples.setdefault("backup", []).append(backup_only(fresh_copy(source, site), scratch))
    for name, command in commands().items():
        for what, extra in (("dry_run", ["--dry-run"]), ("upgrade", ["--yes", "--no-color"])):
            fresh_copy(source, site)
            seconds, rss = run_command(command + ["--data-dir", str(site)] + extra)
            samples.setdefault(f"{what}_{name}", []).append(seconds)
            peaks[name] = max(peaks.get(name, 0), rss)


def measure(size: str, generation: int, runs: int) -> dict:
    source = installation(size, generation)
    scratch = Path(tempfile.mkdtemp(prefix="wems-bench-"))
    samples, peaks = {}, {}
    try:
        for _ in range(runs):
            one_round(generation, source, scratch, samples, peaks)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    medians = {name: statistics.median(values) for name, values in samples.items()}
    db = locate(source, environ={}).database
    size_mb = (db.stat().st_size + (Path(f"{db}-wal").stat().st_size if Path(f"{db}-wal").exists() else 0)) / 1e6
    return {"generation": f"g{generation}", "database_mb": round(size_mb, 1), "runs": runs,
            "seconds": {k: round(v, 3) for k, v in medians.items()},
            "ratios": ratios(medians), "peak_rss_mb": {k: round(v / 1024, 1) for k, v in peaks.items()}}


def ratios(m: dict) -> dict:
    out = {}
    for name in [k for k in m if k.startswith(("upgrade_", "dry_run_"))]:
        out[f"{name} / cp"] = round(m[name] / m["cp"], 2)
        out[f"{name} / (cp + raw_sql)"] = round(m[name] / (m["cp"] + m["raw_sql"]), 2)
    return out


def print_table(size: str, results: list[dict]) -> None:
    print(f"\nsize: {size}    goals: {GOALS}")
    for result in results:
        print(f"\n{result['generation']}  database {result['database_mb']} MB, median of {result['runs']} run(s)")
        for name, seconds in result["seconds"].items():
            print(f"  {name:<22}{seconds:>9.3f} s")
        for name, ratio in result["ratios"].items():
            print(f"  {name:<40}{ratio:>6.2f}x")
        for name, mb in result["peak_rss_mb"].items():
            print(f"  peak memory ({name}){'':<8}{mb:>8.1f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=SIZES, default="typical")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--generations", default="6,1", help="comma-separated, default 6,1")
    parser.add_argument("--json", type=Path, help="where to write the results (default bench/results-<size>.json)")
    args = parser.parse_args()
    results = [measure(args.size, int(g), args.runs) for g in args.generations.split(",")]
    print_table(args.size, results)
    path = args.json or ROOT / "bench" / f"results-{args.size}.json"
    path.write_text(json.dumps({"size": args.size, "goals": GOALS, "results": results}, indent=2) + "\n",
                    encoding="utf-8")
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    main()
