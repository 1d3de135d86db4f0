"""Size and start-up time of the one-file executable next to the Python package.

Usage: python bench/startup.py [--runs 10] [--json bench/startup.json]
Builds the executable first if build/out/ has none. Goals: under 20 MB, under 1 s to start.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIZE_GOAL_MB, START_GOAL_S = 20, 1.0


def _builder():
    spec = importlib.util.spec_from_file_location("wems_build", ROOT / "build" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def median_seconds(command: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    builder = _builder()
    binary = builder.executable()
    if not binary.exists():
        builder.build()
    size_mb = binary.stat().st_size / 1e6
    frozen = median_seconds([str(binary), "--version"], args.runs)
    package = median_seconds([sys.executable, "-m", "upgrader", "--version"], args.runs)
    figures = {
        "binary_mb": round(size_mb, 1),
        "binary_start_s": round(frozen, 3),
        "python_start_s": round(package, 3),
        "runs": args.runs,
    }
    print(f"{'what':<38}{'value':>10}  goal")
    print(f"{'binary size':<38}{size_mb:>8.1f} MB  < {SIZE_GOAL_MB} MB {'ok' if size_mb < SIZE_GOAL_MB else 'MISSED'}")
    print(
        f"{'binary --version (median of ' + str(args.runs) + ')':<38}{frozen:>9.3f}s  < {START_GOAL_S} s "
        f"{'ok' if frozen < START_GOAL_S else 'MISSED'}"
    )
    print(f"{'python -m upgrader --version (median)':<38}{package:>9.3f}s")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
