"""Databases as they are in the wild: opened by a newer app, or changed by hand, and still explainable."""

from __future__ import annotations

import pytest
from support import execute, query, table_rows

from upgrader.installation import locate
from upgrader.upgrade import upgrade


def sql_of(catalog, generation: int) -> str:
    return catalog.step(generation).up_sql


def open_with_newer_app(catalog, root, *generations: int) -> None:
    """What create_tables(safe=True) of a newer app does: add its missing tables, nothing else."""
    for generation in generations:
        for op in catalog.step(generation).operations:
            if op.kind in ("create_table", "create_index"):
                present = query(root, "SELECT 1 FROM sqlite_master WHERE name=?", (op.target,))
                if not present:
                    execute(root, op.statements[0])


# (generation, newer apps that opened it, generation detected): g4 + the migrations table IS g5,
# and g6 + the contract tables IS g7, since those steps only add tables.
MIXED = [(1, (5,), 1), (1, (5, 7), 1), (2, (7,), 2), (4, (5, 7), 5), (5, (7,), 5), (6, (7,), 7)]


@pytest.mark.parametrize(
    "generation,newer,detected", MIXED, ids=[f"g{g}+tables-of-{'-'.join(map(str, n))}" for g, n, _d in MIXED]
)
def test_an_old_database_opened_by_a_newer_app_upgrades(install, catalog, generation, newer, detected):
    root = install(generation)
    open_with_newer_app(catalog, root, *newer)
    result = upgrade(locate(root, environ={}))
    assert result.plan.current.generation == detected
    skipped = {o.operation.target for o in result.outcomes if not o.applied}
    if detected < 7 and 7 in newer:
        assert {"contracts", "contract_amendments"} <= skipped
        assert any("contracts" in line for line in result.plan.detection.beyond)
    assert all(c.ok for c in result.checks)


def test_a_column_added_by_hand_is_kept_with_its_data(install):
    root = install(2)
    execute(
        root,
        'ALTER TABLE "employees" ADD COLUMN "phone" VARCHAR(255);'
        "UPDATE employees SET phone = '+33 6 12 34 56 78' WHERE rowid % 2 = 0",
    )
    phones = query(root, "SELECT id, phone FROM employees ORDER BY id")
    result = upgrade(locate(root, environ={}))
    skipped = [o.operation.describe() for o in result.outcomes if not o.applied]
    assert skipped == ["add column employees.phone"]
    assert query(root, "SELECT id, phone FROM employees ORDER BY id") == phones


def test_the_soft_delete_script_run_by_hand_counts_as_g6(install, catalog):
    root = install(5)
    execute(root, sql_of(catalog, 6))
    result = upgrade(locate(root, environ={}))
    assert result.plan.current.generation == 6
    assert all(c.ok for c in result.checks)


def test_half_of_a_script_run_by_hand_is_finished(install, catalog):
    root = install(5)
    columns_only = "\n".join(line for line in sql_of(catalog, 6).splitlines() if "CREATE INDEX" not in line)
    execute(root, columns_only)
    result = upgrade(locate(root, environ={}))
    assert result.plan.current.generation == 5
    g6 = [o for o in result.outcomes if o.step.generation == 6]
    assert [o.operation.kind for o in g6 if o.applied] == ["create_index"] * 4
    assert all(c.ok for c in result.checks)


def test_the_optional_fields_script_run_by_hand_counts_as_g8(install, catalog):
    root = install(7)
    execute(root, sql_of(catalog, 8))
    result = upgrade(locate(root, environ={}))
    assert result.plan.current.generation == 8
    assert [o for o in result.outcomes if o.applied] == []
    assert result.status == "upgraded", "only the app's bookkeeping was missing"


def test_indexes_written_by_hand_in_another_spelling_are_recognised(install):
    root = install(3)
    execute(root, "CREATE INDEX medicalvisit_result ON medical_visits(result)")
    result = upgrade(locate(root, environ={}))
    assert result.plan.current.generation == 4


def test_rows_are_identical_after_a_mixed_upgrade(install, catalog):
    root = install(4)
    open_with_newer_app(catalog, root, 5, 7)
    before = table_rows(root)
    upgrade(locate(root, environ={}))
    after = table_rows(root)
    for table in ("employees", "caces", "medical_visits", "online_trainings"):
        for key, record in before[table].items():
            assert {c: after[table][key][c] for c in record} == record


def test_a_crashed_v2_app_then_the_soft_delete_script_on_a_g1_database(install, catalog):
    root = install(1)
    open_with_newer_app(catalog, root, 5, 7)
    execute(root, sql_of(catalog, 6))
    execute(root, "UPDATE caces SET deleted_at = '2026-01-20 10:00:00', deleted_by = 'admin' WHERE rowid % 7 = 0")
    deleted = query(root, "SELECT id, deleted_at, deleted_by FROM caces WHERE deleted_at IS NOT NULL ORDER BY id")
    result = upgrade(locate(root, environ={}))
    assert result.plan.current.generation == 1
    carried = [o for o in result.outcomes if o.operation.kind == "rebuild" and o.operation.target == "caces"]
    assert any('ADD COLUMN "deleted_at"' in s for s in carried[0].statements)
    assert (
        query(root, "SELECT id, deleted_at, deleted_by FROM caces WHERE deleted_at IS NOT NULL ORDER BY id") == deleted
    )
    assert all(c.ok for c in result.checks)


def test_a_g3_database_with_newer_app_tables_and_both_hand_scripts(install, catalog):
    root = install(3)
    open_with_newer_app(catalog, root, 5, 7)
    execute(root, sql_of(catalog, 6))
    execute(root, sql_of(catalog, 8))
    result = upgrade(locate(root, environ={}))
    assert result.plan.current.generation == 3
    assert [o.operation.target for o in result.outcomes if o.applied] == ["medicalvisit_result"]
    assert all(c.ok for c in result.checks)
