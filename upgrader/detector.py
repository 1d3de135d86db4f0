"""Tells what a database is from its schema (WEMS records no version), or why it cannot tell."""

from __future__ import annotations

import re
from dataclasses import dataclass

import apsw

from upgrader.errors import BadInstallation, NewerDatabase, UnknownSchema
from upgrader.loader import Catalog, Step
from upgrader.recorder import read_history, recorded_app_migrations
from upgrader.schema import Schema, differences, read_schema

_APP_MIGRATION = re.compile(r"^(\d{8}_\d{6})_")


@dataclass(frozen=True)
class Detection:
    """The newest generation whose whole schema is present, and what the database has beyond it."""

    step: Step
    schema: Schema
    beyond: tuple[str, ...]

    @property
    def exact(self) -> bool:
        return not self.beyond


def detect(conn: apsw.Connection, catalog: Catalog) -> Detection:
    _refuse_if_newer(conn, catalog)
    schema = read_schema(conn)
    _refuse_if_not_wems(schema, catalog)
    for step in reversed(catalog.steps):
        if not differences(schema, step.schema, allow_extra=True):
            return Detection(step, schema, tuple(differences(schema, step.schema)))
    closest = min(catalog.steps, key=lambda s: (len(differences(schema, s.schema)), -s.generation))
    raise UnknownSchema(
        f"This database does not match any Wareflow EMS version. Closest is {closest.label} "
        f"({closest.releases}); the differences are:", differences(schema, closest.schema))


def _refuse_if_not_wems(schema: Schema, catalog: Catalog) -> None:
    if not schema.tables:
        raise BadInstallation("The database file is empty: it holds no Wareflow EMS data.")
    known = set(catalog.latest.schema.tables)
    if not known & set(schema.tables):
        raise BadInstallation("This is not a Wareflow EMS database: it has none of its tables "
                              f"(it has: {', '.join(sorted(t.name for t in schema.tables.values()))}).")


def _refuse_if_newer(conn: apsw.Connection, catalog: Catalog) -> None:
    latest = catalog.latest
    newer_steps = [h for h in read_history(conn) if h["generation"] > latest.generation]
    if newer_steps:
        h = newer_steps[-1]
        raise NewerDatabase(
            f"This database was upgraded to {h['step']} by wems-upgrade {h['upgrader_version']}, "
            f"newer than this upgrader knows (up to {latest.label}, Wareflow EMS {latest.last_release}).")
    known = catalog.app_migrations(latest.generation)
    newest_known = max((_APP_MIGRATION.match(n).group(1) for n in known), default="")
    unknown = sorted(n for n in recorded_app_migrations(conn) if n not in known
                     and _APP_MIGRATION.match(n) and _APP_MIGRATION.match(n).group(1) > newest_known)
    if unknown:
        raise NewerDatabase(
            f"This database was changed by a Wareflow EMS release newer than this upgrader knows "
            f"(up to {latest.last_release}).", [f"unknown app migration {n}" for n in unknown])
