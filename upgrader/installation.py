"""Finds an installation's database and config file the way Wareflow EMS itself does."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from upgrader.errors import BadInstallation

CONFIG_NAMES = ("config.yaml", "config.yml", "config.json")
DEFAULT_DIR = "data"
DEFAULT_NAME = "employee_manager.db"


@dataclass(frozen=True)
class Installation:
    root: Path
    database: Path
    config: Path | None
    database_source: str


def read_dotenv(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a .env file (comments, blank lines, `export` and quotes handled)."""
    values = {}
    if not path.is_file():
        return values
    for line in path.read_text(encoding="utf-8-sig", errors="replace").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        else:
            value = value.split(" #")[0].strip()
        values[key.strip()] = value
    return values


def _database_path(root: Path, settings: Mapping[str, str]) -> tuple[Path, str]:
    if settings.get("DATABASE_PATH"):
        return root / settings["DATABASE_PATH"], "DATABASE_PATH"
    folder = settings.get("DATABASE_DIR") or DEFAULT_DIR
    name = settings.get("DATABASE_NAME") or DEFAULT_NAME
    source = "DATABASE_DIR/DATABASE_NAME" if {"DATABASE_DIR", "DATABASE_NAME"} & settings.keys() else "default"
    return root / folder / name, source


def locate(root: Path | str, environ: Mapping[str, str] | None = None) -> Installation:
    """The installation in `root`; the process environment wins over `.env`, as in the app."""
    root = Path(root).resolve()
    if not root.is_dir():
        raise BadInstallation(f"The folder {root} does not exist.")
    environ = os.environ if environ is None else environ
    settings = {**read_dotenv(root / ".env"),
                **{k: v for k, v in environ.items() if k.startswith("DATABASE_")}}
    database, source = _database_path(root, settings)
    return Installation(root, database.resolve(), find_config(root), source)


def find_config(root: Path) -> Path | None:
    """The settings file the app reads: the first of config.yaml, config.yml, config.json."""
    return next((root / n for n in CONFIG_NAMES if (root / n).is_file()), None)
