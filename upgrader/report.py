"""Every text the user reads: plans, results and refusals. The one place output is formatted."""

from __future__ import annotations

from itertools import groupby

from upgrader.errors import UpgradeError
from upgrader.executor import Outcome
from upgrader.loader import Step
from upgrader.planner import Plan
from upgrader.upgrade import UpgradeResult


def _version(step: Step) -> str:
    return f"{step.label} (Wareflow EMS {step.releases})"


def _by_step(outcomes: list[Outcome]) -> list[tuple[Step, list[Outcome]]]:
    return [(step, list(group)) for step, group in groupby(outcomes, key=lambda o: o.step)]


def _changes(outcomes: list[Outcome]) -> str:
    applied = sum(o.applied for o in outcomes)
    skipped = len(outcomes) - applied
    text = f"{applied} change{'s' if applied != 1 else ''}"
    return text + (f", {skipped} already present" if skipped else "")


def render_plan(plan: Plan) -> list[str]:
    lines = ["Plan",
             f"  Database is:   {_version(plan.current)}",
             f"  Upgrading to:  {_version(plan.target)}"]
    if plan.detection.beyond:
        lines.append("  Already present from newer releases (kept, not redone):")
        lines += [f"    - {d}" for d in plan.detection.beyond]
    for step, outcomes in _by_step(list(plan.outcomes)):
        lines.append(f"  {step.label}: {step.description}")
        lines.append(f"       ({_changes(outcomes)})")
        lines += [f"       - already present: {o.operation.describe()}" for o in outcomes if not o.applied]
    if plan.app_migrations:
        lines.append(f"  Record {len(plan.app_migrations)} finished migration(s) so Wareflow EMS "
                     "starts with nothing pending")
    return lines


def _migration_lines(result: UpgradeResult) -> list[str]:
    lines = ["Database migration (one transaction)"]
    for step, outcomes in _by_step(result.outcomes):
        lines.append(f"  [ok] {step.label}  {_changes(outcomes)}")
    return lines


def _validation_lines(result: UpgradeResult) -> list[str]:
    lines = ["Validation"]
    for check in result.checks:
        lines.append(f"  [{'ok' if check.ok else 'FAILED'}] {check.name}: {check.detail}")
    return lines


def render_result(result: UpgradeResult) -> str:
    install = result.installation
    lines = [f"Installation: {install.root}", f"Database:     {install.database}", ""]
    if result.status == "up_to_date":
        lines.append(f"Nothing to do: the database is already {_version(result.plan.target)}.")
        return "\n".join(lines)
    lines += render_plan(result.plan) + [""] + _migration_lines(result) + [""]
    lines += _validation_lines(result) + [""]
    if result.status == "dry_run":
        lines.append(f"DRY RUN: every step and check above ran on a temporary copy, which was deleted. "
                     f"Nothing in {install.root} was changed ({result.seconds:.1f} s).")
    else:
        lines.append(f"Done: the database is now {_version(result.plan.target)} ({result.seconds:.1f} s).")
    return "\n".join(lines)


def render_error(error: UpgradeError) -> str:
    word = {"refused": "REFUSED", "rolled_back": "FAILED", "usage": "USAGE"}.get(error.status, "ERROR")
    lines = [f"{word}: {error.message}"]
    lines += [f"  - {d}" for d in error.details]
    lines.append(error.advice)
    return "\n".join(lines)
