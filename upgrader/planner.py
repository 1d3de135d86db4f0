"""Builds the plan: the steps from the detected generation to the target, each operation
marked as needed or already done, proven by running it on an empty copy of the schema."""

from __future__ import annotations

from dataclasses import dataclass

import apsw

from upgrader.detector import Detection, newest_contained, read_wems_schema, unknown
from upgrader.errors import NewerDatabase, UnknownSchema, UpgradeFailed
from upgrader.executor import Outcome, in_transaction, run_steps
from upgrader.i18n import T, Text
from upgrader.loader import Catalog, Step
from upgrader.recorder import recorded_app_migrations
from upgrader.schema import Schema, difference_texts, extra_columns, extra_objects, read_schema, schema_only_copy


@dataclass(frozen=True)
class Plan:
    detection: Detection
    target: Step
    steps: tuple[Step, ...]
    outcomes: tuple[Outcome, ...]
    app_migrations: tuple[str, ...]

    @property
    def current(self) -> Step:
        return self.detection.step

    @property
    def applied(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.applied]

    @property
    def touched_tables(self) -> set[str]:
        return {o.operation.table for o in self.applied if o.operation.table}

    @property
    def nothing_to_do(self) -> bool:
        return not self.applied and not self.app_migrations


def make_plan(conn: apsw.Connection, catalog: Catalog, target: Step) -> Plan:
    schema = read_wems_schema(conn, catalog)
    base = newest_contained(schema, catalog, catalog.latest)
    if base and base.generation > target.generation:
        raise NewerDatabase(
            T(
                "This database is {generation} ({releases}), newer than the requested {target} "
                "({target_releases}). wems-upgrade never downgrades.",
                generation=base.label,
                releases=T(base.releases),
                target=target.label,
                target_releases=T(target.releases),
            )
        )
    if target is not catalog.latest:
        base = newest_contained(schema, catalog, target)
    if base is None:
        raise unknown(schema, catalog)
    _refuse_unexplained(schema, target)
    steps = catalog.path(base.generation, target.generation)
    outcomes = simulate(conn, steps, target)
    detection = Detection(base, schema, tuple(difference_texts(schema, base.schema)))
    pending = _pending_app_migrations(conn, catalog, target)
    return Plan(detection, target, tuple(steps), tuple(outcomes), tuple(pending))


def _refuse_unexplained(schema: Schema, target: Step) -> None:
    extras = extra_objects(schema, target.schema) + extra_columns(schema, target.schema)
    if extras:
        raise UnknownSchema(
            T(
                "This database has parts that Wareflow EMS {generation} ({releases}) does not "
                "have. They may have been added by hand, or by a newer release:",
                generation=target.label,
                releases=T(target.releases),
            ),
            extras,
        )


def simulate(conn: apsw.Connection, steps: list[Step], target: Step) -> list[Outcome]:
    """Run the steps on an empty in-memory copy of the schema; return what each operation does."""
    copy = schema_only_copy(conn)
    try:
        outcomes = in_transaction(copy, lambda c: run_steps(c, steps, target.schema), lambda c, _o: None)
        problems = difference_texts(read_schema(copy), target.schema)
    except UpgradeFailed as exc:
        reason: list[str | Text] = [exc.text]
        raise UnknownSchema(T("The upgrade SQL does not fit this database:"), reason) from exc
    finally:
        copy.close()
    if problems:
        raise UnknownSchema(
            T(
                "After upgrading, this database would still differ from {generation}; the differences are:",
                generation=target.label,
            ),
            problems,
        )
    return outcomes


def _pending_app_migrations(conn: apsw.Connection, catalog: Catalog, target: Step) -> list[str]:
    if target.schema.table("migrations") is None:
        return []
    done = recorded_app_migrations(conn)
    return [name for name in catalog.app_migrations(target.generation) if name not in done]
