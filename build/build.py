"""Build the one-file wems-upgrade executable into build/out/ and write its SHA256SUMS.

Usage: python build/build.py
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
OUT = ROOT / "build" / "out"
WORK = ROOT / "build" / "work"


def executable() -> Path:
    return OUT / ("wems-upgrade.exe" if sys.platform == "win32" else "wems-upgrade")


def build() -> Path:
    started = time.monotonic()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "PyInstaller",
            "--noconfirm",
            "--clean",
            "--log-level",
            "WARN",
            "--distpath",
            str(OUT),
            "--workpath",
            str(WORK),
            str(ROOT / "build" / "wems-upgrade.spec"),
        ],
        check=True,
    )
    binary = executable()
    from upgrader.backup import sha256_file

    (OUT / "SHA256SUMS").write_text(f"{sha256_file(binary)}  {binary.name}\n", encoding="utf-8")
    print(f"built {binary} ({binary.stat().st_size / 1e6:.1f} MB) in {time.monotonic() - started:.0f} s")
    return binary


if __name__ == "__main__":
    build()
