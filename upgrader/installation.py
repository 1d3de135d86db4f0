"""Finds an installation's database and config file the way Wareflow EMS itself does."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import apsw

from upgrader.errors import BadInstallation
from upgrader.i18n import N_, T

CONFIG_NAMES = ("config.yaml", "config.yml", "config.json")
DEFAULT_DIR = "data"
DEFAULT_NAME = "employee_manager.db"
#: The longest name SQLite opens for us beside the database: the work copy's rollback journal.
LONGEST_SUFFIX = ".wems-upgrade-0000000.tmp-journal"
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
DOTENV_ADVICE = N_(
    "Nothing was changed. Wareflow EMS reads .env as UTF-8 text and cannot start with this one "
    "either. Open it in Notepad, choose File > Save as, Encoding: UTF-8, then run wems-upgrade again."
)
DOTENV_NUL_ADVICE = N_(
    "Nothing was changed. Wareflow EMS reads .env as UTF-8 text and cannot start with this one "
    "either. Remove it (or retype the line), or open it in Notepad, choose File > Save as, "
    "Encoding: UTF-8, then run wems-upgrade again."
)


@dataclass(frozen=True)
class Installation:
    root: Path
    database: Path
    config: Path | None
    database_source: str


def read_dotenv(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a .env file (comments, blank lines, `export` and quotes handled)."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for number, line in enumerate(_dotenv_text(path).splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        if "\0" in line:
            raise BadInstallation(
                T("The file {path} has an invisible NUL character on line {line}.", path=path, line=number),
                advice=T(DOTENV_NUL_ADVICE),
            )
        key, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        else:
            value = value.split(" #")[0].strip()
        values[key.strip()] = value
    return values


def _dotenv_text(path: Path) -> str:
    """The text of .env, read as the app's python-dotenv reads it: UTF-8 (a UTF-8 BOM is skipped)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BadInstallation(
            T("The file {path} cannot be read ({reason}).", path=path, reason=exc.strerror or exc)
        ) from exc
    if data.startswith(UTF16_BOMS):
        raise BadInstallation(
            T('The file {path} is saved as UTF-16 ("Unicode" in Notepad), not UTF-8.', path=path),
            advice=T(DOTENV_ADVICE),
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise BadInstallation(
            T("The file {path} is not UTF-8 text (line {line}).", path=path, line=line), advice=T(DOTENV_ADVICE)
        ) from None


def _check_length(database: Path) -> None:
    """Refuse a path longer than SQLite opens (with room for the work files beside it)."""
    longest = cast(int, apsw.vfs_details()[0]["mxPathname"]) - len(LONGEST_SUFFIX)  # an int in sqlite3_vfs
    length = len(str(database).encode("utf-8"))
    if length > longest:
        raise BadInstallation(
            T(
                "The database path {path} is too long for SQLite: {length} characters, "
                "and wems-upgrade can use at most {longest}.",
                path=database,
                length=length,
                longest=longest,
            ),
            advice=T(
                "Nothing was changed. Move the Wareflow EMS folder to a shorter path "
                "(or shorten DATABASE_PATH / DATABASE_DIR in .env), then run wems-upgrade again."
            ),
        )


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
        raise BadInstallation(T("The folder {folder} does not exist.", folder=root))
    environ = os.environ if environ is None else environ
    settings = {**read_dotenv(root / ".env"), **{k: v for k, v in environ.items() if k.startswith("DATABASE_")}}
    database, source = _database_path(root, settings)
    _check_length(database)
    return Installation(root, database.resolve(), find_config(root), source)


def find_config(root: Path) -> Path | None:
    """The settings file the app reads: the first of config.yaml, config.yml, config.json."""
    return next((root / n for n in CONFIG_NAMES if (root / n).is_file()), None)
