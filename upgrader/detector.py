"""Tells what a database is from its schema (WEMS records no version), or why it cannot tell."""

from __future__ import annotations

import re
from dataclasses import dataclass

import apsw

from upgrader.errors import BadInstallation, NewerDatabase, UnknownSchema
from upgrader.i18n import T, Text, english
from upgrader.loader import Catalog, Step
from upgrader.recorder import read_history, recorded_app_migrations
from upgrader.schema import (
    Schema,
    column_differences,
    constraint_differences,
    difference_texts,
    index_differences,
    missing_column,
    missing_index,
    missing_table,
    read_schema,
)

_APP_MIGRATION = re.compile(r"^(\d{8}_\d{6})_")


@dataclass(frozen=True)
class Detection:
    """The generation an upgrade starts from, and how the database differs from a plain one of it."""

    step: Step
    schema: Schema
    #: the differences from a plain database of `step` (each a Text: shown translated, logged in English)
    beyond_texts: tuple[str | Text, ...]

    @property
    def beyond(self) -> tuple[str, ...]:
        """The differences in English (the log, --json, tests)."""
        return tuple(english(text) for text in self.beyond_texts)


def read_wems_schema(conn: apsw.Connection, catalog: Catalog) -> Schema:
    """The database's schema, after refusing databases that are newer than the catalog or not WEMS."""
    _refuse_if_newer(conn, catalog)
    schema = read_schema(conn)
    _refuse_if_not_wems(schema, catalog)
    return schema


def newest_contained(schema: Schema, catalog: Catalog, target: Step) -> Step | None:
    """The newest generation whose every table, column, foreign key and index is present, each
    as that generation defines it or as a later one up to `target` does (a change made early,
    by hand or by a script the app shipped). Extra objects are allowed here."""
    for step in reversed(catalog.steps):
        later = [s.schema for s in catalog.path(step.generation, max(target.generation, step.generation))]
        if not unexplained(schema, step.schema, later):
            return step
    return None


def _explained(have, wanted, later, differ) -> bool:
    return not differ(have, wanted) or any(alt is not None and not differ(have, alt) for alt in later)


def unexplained(actual: Schema, expected: Schema, later: list[Schema]) -> list[str | Text]:
    """The differences of `actual` from `expected` that no schema in `later` accounts for."""
    out: list[str | Text] = []
    for key, table in expected.tables.items():
        mine = actual.tables.get(key)
        if mine is None:
            out.append(missing_table(table.name))
            continue
        alternatives = [s.tables.get(key) for s in later]
        for col in table.columns:
            have = mine.column(col.name)
            col_options = [t.column(col.name) if t else None for t in alternatives]
            if have is None:
                out.append(missing_column(table.name, col.name))
            elif not _explained(have, col, col_options, lambda a, b, name=table.name: column_differences(name, a, b)):
                out.extend(column_differences(table.name, have, col))
        keys = [(t.foreign_keys, t.unique_constraints) if t else None for t in alternatives]
        if not _explained(
            (mine.foreign_keys, mine.unique_constraints),
            (table.foreign_keys, table.unique_constraints),
            keys,
            lambda a, b: a != b,
        ):
            out.extend(constraint_differences(mine, table))
    for key, index in expected.indexes.items():
        mine_index = actual.indexes.get(key)
        index_options = [s.indexes.get(key) for s in later]
        if mine_index is None:
            out.append(missing_index(index.name))
        elif not _explained(mine_index, index, index_options, index_differences):
            out.extend(index_differences(mine_index, index))
    return out


def unknown(schema: Schema, catalog: Catalog) -> UnknownSchema:
    closest = min(catalog.steps, key=lambda s: (len(difference_texts(schema, s.schema)), -s.generation))
    return UnknownSchema(
        T(
            "This database does not match any Wareflow EMS version. Closest is {generation} "
            "({releases}); the differences are:",
            generation=closest.label,
            releases=T(closest.releases),
        ),
        difference_texts(schema, closest.schema),
    )


def refuse_if_not_wems(conn: apsw.Connection, catalog: Catalog) -> None:
    """BadInstallation if the database is empty or has none of Wareflow EMS's tables."""
    _refuse_if_not_wems(read_schema(conn), catalog)


def _refuse_if_not_wems(schema: Schema, catalog: Catalog) -> None:
    if not schema.tables:
        raise BadInstallation(T("The database file is empty: it holds no Wareflow EMS data."))
    known = set(catalog.latest.schema.tables)
    if not known & set(schema.tables):
        raise BadInstallation(
            T(
                "This is not a Wareflow EMS database: it has none of its tables (it has: {tables}).",
                tables=", ".join(sorted(t.name for t in schema.tables.values())),
            )
        )


def _stamp(name: str) -> str | None:
    """The date and time an app migration's name starts with (YYYYMMDD_HHMMSS), or None."""
    match = _APP_MIGRATION.match(name)
    return match.group(1) if match else None


def _refuse_if_newer(conn: apsw.Connection, catalog: Catalog) -> None:
    latest = catalog.latest
    newer_steps = [h for h in read_history(conn) if h["generation"] > latest.generation]
    if newer_steps:
        h = newer_steps[-1]
        raise NewerDatabase(
            T(
                "This database was upgraded to {step} by wems-upgrade {version}, "
                "newer than this upgrader knows (up to {generation}, Wareflow EMS {release}).",
                step=h["step"],
                version=h["upgrader_version"],
                generation=latest.label,
                release=latest.last_release,
            )
        )
    known = catalog.app_migrations(latest.generation)
    newest_known = max((stamp for stamp in map(_stamp, known) if stamp), default="")
    unknown = sorted(n for n in recorded_app_migrations(conn) if n not in known and (_stamp(n) or "") > newest_known)
    if unknown:
        details: list[str | Text] = [T("unknown app migration {name}", name=n) for n in unknown]
        raise NewerDatabase(
            T(
                "This database was changed by a Wareflow EMS release newer than this upgrader knows (up to {release}).",
                release=latest.last_release,
            ),
            details,
        )
