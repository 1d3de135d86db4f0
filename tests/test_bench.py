"""A small run of the benchmark, so it keeps working (its figures are not checked here)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_benchmark_runs_and_writes_its_table(tmp_path):
    out = tmp_path / "results.json"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "bench.py"),
            "--size",
            "small",
            "--runs",
            "1",
            "--generations",
            "6,1",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert "upgrade_package / cp" in done.stdout
    results = json.loads(out.read_text(encoding="utf-8"))["results"]
    assert [r["generation"] for r in results] == ["g6", "g1"]
    for result in results:
        assert {"cp", "raw_sql", "backup", "dry_run_package", "upgrade_package"} <= result["seconds"].keys()
        assert result["peak_rss_mb"]["package"] > 0
        assert result["wal_mb"] > 0, "the installations keep data in a -wal file"
        assert {"plan", "migration SQL", "checks", "swap and settings"} <= result["upgrade_phases_seconds"].keys()
    peers = {
        name
        for name, module in (("sqlite_utils", "sqlite_utils"), ("alembic", "alembic"))
        if importlib.util.find_spec(module)
    }
    assert {f"peer_{name}" for name in peers} <= results[1]["seconds"].keys()
    assert not any(k.startswith("peer_") for k in results[0]["seconds"]), "peers rebuild g1 only"
    if "alembic" in peers:
        assert results[1]["peer_schema_differences"]["alembic"] == []
