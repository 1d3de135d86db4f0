"""Reads the migrations/ folder: one folder per schema generation, in order.

A folder `g<N>_<name>/` holds `step.toml` (description, releases, app migration names),
`schema.sql` (the schema a fresh install of generation N creates) and, from g2 on,
`up.sql` (the SQL that takes generation N-1 to N). It may hold `app_checks.sql`: what the app of
that generation runs at start-up and on its main screens, each statement preceded by a line
`-- name: <what it does>`; a generation without one runs the newest earlier generation's.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

import apsw
from packaging.version import InvalidVersion, Version

from upgrader.errors import MalformedMigrations, NewerDatabase, UsageError
from upgrader.i18n import T, Text
from upgrader.operations import Operation, parse_operations
from upgrader.paths import migrations_dir
from upgrader.schema import Schema, schema_from_sql

_FOLDER = re.compile(r"^g(\d+)_(\w+)$")
_NAME = re.compile(r"^--\s*name:\s*(.+?)\s*$", re.MULTILINE)
APP_CHECKS_FILE = "app_checks.sql"


@dataclass(frozen=True)
class AppOperation:
    """One operation of the app (a screen's query, an insert, an update), run before COMMIT."""

    name: str
    sql: str


def parse_app_operations(text: str, source: str = APP_CHECKS_FILE) -> tuple[AppOperation, ...]:
    """Split an app_checks.sql into its named statements; anything before the first name must be comments."""
    parts = _NAME.split(text)
    lead = [line for line in parts[0].splitlines() if line.strip() and not line.lstrip().startswith("--")]
    if lead:
        raise MalformedMigrations(
            T("{file}: SQL before the first '-- name:' line: {sql}", file=source, sql=lead[0].strip())
        )
    operations, seen = [], set()
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        sql = body.strip()
        code = [line for line in sql.splitlines() if line.strip() and not line.lstrip().startswith("--")]
        if not code:
            raise MalformedMigrations(T("{file}: '{name}' has no SQL", file=source, name=name))
        if name in seen:
            raise MalformedMigrations(T("{file}: two operations are named '{name}'", file=source, name=name))
        seen.add(name)
        operations.append(AppOperation(name, sql))
    return tuple(operations)


@dataclass(frozen=True)
class Step:
    generation: int
    name: str
    description: str
    releases: str
    schema_sql: str
    up_sql: str | None = None
    first_release: Version | None = None
    last_release: Version | None = None
    app_migrations: tuple[str, ...] = ()
    operations: tuple[Operation, ...] = field(default=(), compare=False)
    app_checks_sql: str | None = None
    #: the app's operations for a database of this generation, and the generation whose file holds them
    app_operations: tuple[AppOperation, ...] = field(default=(), compare=False)
    app_operations_from: int | None = None

    @property
    def label(self) -> str:
        return f"g{self.generation}"

    @property
    def checksum(self) -> str:
        """SHA-256 of the step's SQL, as recorded in the database's upgrade history."""
        return hashlib.sha256((self.up_sql or "").encode("utf-8")).hexdigest()

    @cached_property
    def schema(self) -> Schema:
        return schema_from_sql(self.schema_sql)


def _version(value: str | None) -> Version | None:
    return Version(value) if value else None


def load_step(folder: Path) -> Step:
    """One generation's folder; MalformedMigrations (naming the folder) if it breaks the rules above."""
    try:
        step = _load_step(folder)
        if not step.schema.tables:  # read now, not mid-run: SQL that SQLite runs, creating tables
            raise MalformedMigrations(T("schema.sql creates no table"))
        return step
    except apsw.Error as exc:
        raise _malformed(folder, f"schema.sql: {exc}") from exc
    except MalformedMigrations as exc:
        raise _malformed(folder, exc.text) from exc
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, KeyError, InvalidVersion) as exc:
        what = f"{type(exc).__name__}: {exc}" if not isinstance(exc, KeyError) else T("step.toml lacks {key}", key=exc)
        raise _malformed(folder, what) from exc


def _malformed(folder: Path, reason: str | Text) -> MalformedMigrations:
    return MalformedMigrations(
        T("The migrations folder is malformed: {folder}: {reason}", folder=folder.name, reason=reason)
    )


def _load_step(folder: Path) -> Step:
    match = _FOLDER.match(folder.name)
    if match is None:
        raise MalformedMigrations(T("the folder name is not g<N>_<name>"))
    meta = tomllib.loads((folder / "step.toml").read_text(encoding="utf-8"))
    up = folder / "up.sql"
    up_sql = up.read_text(encoding="utf-8") if up.exists() else None
    checks = folder / APP_CHECKS_FILE
    checks_sql = checks.read_text(encoding="utf-8") if checks.exists() else None
    generation = int(match.group(1))
    if meta.get("generation") != generation:
        raise MalformedMigrations(T("step.toml says generation {generation}", generation=meta.get("generation")))
    return Step(
        generation=generation,
        name=match.group(2),
        description=meta["description"],
        releases=meta["releases"],
        schema_sql=(folder / "schema.sql").read_text(encoding="utf-8"),
        up_sql=up_sql,
        first_release=_version(meta.get("first_release")),
        last_release=_version(meta.get("last_release")),
        app_migrations=tuple(meta.get("app_migrations", ())),
        operations=tuple(parse_operations(up_sql)) if up_sql else (),
        app_checks_sql=checks_sql,
        app_operations=parse_app_operations(checks_sql, APP_CHECKS_FILE) if checks_sql else (),
        app_operations_from=generation if checks_sql else None,
    )


@dataclass(frozen=True)
class Catalog:
    steps: tuple[Step, ...]
    folder: Path | None = None

    @property
    def latest(self) -> Step:
        return self.steps[-1]

    def step(self, generation: int) -> Step:
        return self.steps[generation - 1]

    def path(self, start: int, target: int) -> list[Step]:
        """The steps that take generation `start` to `target`."""
        return list(self.steps[start:target])

    def app_migrations(self, target: int) -> list[str]:
        """The app migration names a database of generation `target` has, in order."""
        return [name for step in self.steps[:target] for name in step.app_migrations]

    @cached_property
    def digest(self) -> str:
        """SHA-256 over every file of the migrations folder: tells which migrations a build embeds."""
        folder = self.folder
        if folder is None:
            raise ValueError("a catalog built without a folder has no digest")
        h = hashlib.sha256()
        for path in sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
            h.update(path.relative_to(folder).as_posix().encode("utf-8") + b"\0")
            h.update(path.read_bytes() + b"\0")
        return h.hexdigest()

    def resolve_target(self, wanted: str | None) -> Step:
        """The step named by --to-version: a release ("2.1.4"), a generation ("g7"), or None for the latest."""
        if not wanted or wanted.lower() == "latest":
            return self.latest
        gen = re.fullmatch(r"[gG](\d+)", wanted.strip())
        if gen:
            number = int(gen.group(1))
            if 1 <= number <= len(self.steps):
                return self.step(number)
            if number < 1:
                raise UsageError(
                    T(
                        "There is no generation {wanted}: they go from g1 to {latest}.",
                        wanted=wanted,
                        latest=self.latest.label,
                    )
                )
            raise NewerDatabase(
                T(
                    "wems-upgrade knows generations g1 to {latest}, not {wanted}.",
                    latest=self.latest.label,
                    wanted=wanted,
                )
            )
        return self._step_for_release(wanted)

    def _step_for_release(self, wanted: str) -> Step:
        try:
            version = Version(wanted.lstrip("vV"))
        except InvalidVersion:
            raise UsageError(T("'{wanted}' is not a version (examples: 2.3.2, g8, latest).", wanted=wanted)) from None
        newest = self.latest.last_release
        if newest and version > newest:
            raise NewerDatabase(
                T(
                    "Wareflow EMS {version} is newer than this upgrader knows (newest known: {newest}).",
                    version=version,
                    newest=newest,
                )
            )
        candidates = [s for s in self.steps if s.first_release and s.first_release <= version]
        if not candidates:
            raise UsageError(
                T(
                    "No known Wareflow EMS release is {version}; use a generation (g1 to "
                    "{latest}) for the 0.1.0 pre-release builds.",
                    version=version,
                    latest=self.latest.label,
                )
            )
        return candidates[-1]


def load_catalog(folder: Path | None = None) -> Catalog:
    folder = folder or migrations_dir()
    if not folder.is_dir():
        raise MalformedMigrations(T("The migrations folder {folder} is missing.", folder=folder))
    found = sorted(
        (int(match.group(1)), p) for p in folder.iterdir() if p.is_dir() and (match := _FOLDER.match(p.name))
    )
    steps = _inherit_app_operations([load_step(path) for _n, path in found])
    numbers = [s.generation for s in steps]
    if not steps or numbers != list(range(1, len(steps) + 1)):
        found_text = ", ".join(f"g{n}" for n in numbers) or T("none")
        raise MalformedMigrations(
            T(
                "The migrations folder {folder} is malformed: generations must be g1, g2, ... "
                "without gaps; found {found}",
                folder=folder,
                found=found_text,
            )
        )
    if steps[0].up_sql is not None or any(s.up_sql is None for s in steps[1:]):
        raise MalformedMigrations(
            T(
                "The migrations folder {folder} is malformed: g1 is the baseline (no up.sql); "
                "every later generation needs up.sql",
                folder=folder,
            )
        )
    return Catalog(steps, folder)


def _inherit_app_operations(steps: list[Step]) -> tuple[Step, ...]:
    """A generation without app_checks.sql runs the operations of the newest earlier one that has it
    (a step may change the schema without changing the app's queries)."""
    out, last = [], None
    for step in steps:
        if step.app_checks_sql is not None:
            last = step
        elif last is not None:
            step = replace(step, app_operations=last.app_operations, app_operations_from=last.generation)
        out.append(step)
    return tuple(out)
