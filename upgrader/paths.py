"""Where the embedded data lives, the same way frozen (PyInstaller) or not."""

import sys
from pathlib import Path


def resource_root() -> Path:
    """The folder holding `migrations/`: PyInstaller's unpack folder or the source tree."""
    frozen = getattr(sys, "_MEIPASS", None)
    if frozen:
        return Path(frozen)
    return Path(__file__).resolve().parent.parent


def migrations_dir() -> Path:
    return resource_root() / "migrations"
