"""Every text the user reads: plans, results and refusals. The one place output is formatted."""

from __future__ import annotations

from itertools import groupby

from upgrader.backup import Backup
from upgrader.config import flatten
from upgrader.errors import UpgradeError
from upgrader.executor import Outcome
from upgrader.loader import Step
from upgrader.planner import Plan
from upgrader.preflight import human_size
from upgrader.restore import RestoreResult
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


def _backup_lines(result: UpgradeResult) -> list[str]:
    space = result.space
    if result.status == "dry_run":
        return ["Backup", f"  A real run first saves a backup of about {human_size(space.backup_size)} "
                          f"({human_size(space.free_for_backup)} free there)."] if space.backup_size else []
    if not result.backup:
        return ["Backup", "  [!] No backup was made (--no-backup)."]
    return ["Backup", f"  [ok] {result.backup.folder}",
            f"       {human_size(result.backup.size)}, verified; "
            f"{human_size(space.free_for_backup)} was free before it"]


def _notes(result: UpgradeResult) -> list[str]:
    lines = [f"Note: {result.recovered}"] if result.recovered else []
    lines += [f"Note: an old lock of Wareflow EMS is left in the database and was ignored "
              f"({lock.describe()})." for lock in result.stale_locks]
    return lines + [""] if lines else []


def _config_lines(result: UpgradeResult) -> list[str]:
    config = result.config
    if config is None or config.source is None:
        return ["Settings", "  No settings file: Wareflow EMS uses its defaults (and writes config.yaml itself)."]
    if not config.changes:
        return ["Settings", f"  [ok] {config.source.name} is valid and stays as it is."]
    lines = ["Settings"]
    lines += [f"  {'Would convert' if result.status == 'dry_run' else '[ok] Converted'}: {c.description}"
              for c in config.converters]
    if config.retire:
        lines.append(f"  {config.source.name} is kept as {config.retire.name}")
    if result.status == "dry_run":
        lines += ["  Changes to the settings (- now, + after):"]
        lines += [f"    {line}" for line in settings_diff(config.before, config.after)]
        lines += [f"  {config.new_path.name} would be:"] + [f"    | {line}" for line in config.new_text.splitlines()]
    return lines


def settings_diff(before: dict, after: dict) -> list[str]:
    old, new = flatten(before), flatten(after)
    return [f"- {line}" for line in old if line not in new] + [f"+ {line}" for line in new if line not in old] \
        or ["(same settings, new file format)"]


def render_result(result: UpgradeResult) -> str:
    install = result.installation
    lines = [f"Installation: {install.root}", f"Database:     {install.database}", ""] + _notes(result)
    if result.status == "up_to_date":
        lines.append(f"Nothing to do: the database is already {_version(result.plan.target)}.")
        return "\n".join(lines)
    lines += render_plan(result.plan) + [""]
    backup = _backup_lines(result)
    lines += backup + ([""] if backup else [])
    if result.outcomes or result.checks:
        lines += _migration_lines(result) + [""] + _validation_lines(result) + [""]
    lines += _config_lines(result) + [""]
    if result.status == "dry_run":
        lines.append(f"DRY RUN: every step and check above ran on a temporary copy, which was deleted. "
                     f"Nothing in {install.root} was changed ({result.seconds:.1f} s).")
        return "\n".join(lines)
    lines.append(f"Done: the database is now {_version(result.plan.target)} ({result.seconds:.1f} s).")
    if result.config and result.config.read_after:
        lines.append(f"Wareflow EMS will read its settings from {result.config.read_after}")
    if result.backup:
        lines.append(f"To undo: wems-upgrade --data-dir \"{install.root}\" --restore \"{result.backup.folder}\"")
    return "\n".join(lines)


def render_backups(backups: list) -> str:
    if not backups:
        return "No backups found."
    lines = []
    for number, item in enumerate(backups, 1):
        if isinstance(item, Backup):
            m = item.manifest
            before = m.get("generation_before") or m.get("kind", "")
            lines.append(f"{number:>3}. {item.created_at[:19].replace('T', ' ')} UTC  {m['kind']:<24} "
                         f"before: {before:<4} {human_size(item.size):>9}  {item.folder}")
        else:
            folder, reason = item
            lines.append(f"{number:>3}. (unreadable: {reason})  {folder}")
    return "\n".join(lines)


def render_restore(result: RestoreResult) -> str:
    lines = [f"Note: {result.recovered}"] if result.recovered else []
    lines.append(f"Restored {result.installation.root} from {result.restored.folder}.")
    if result.saved:
        lines.append(f"The state before this restore was saved in {result.saved.folder}")
        lines.append(f"To undo this restore: wems-upgrade --data-dir \"{result.installation.root}\" "
                     f"--restore \"{result.saved.folder}\"")
    else:
        lines.append("There was no readable database before this restore, so no copy of it was saved.")
    return "\n".join(lines)


def render_error(error: UpgradeError) -> str:
    word = {"refused": "REFUSED", "rolled_back": "FAILED", "usage": "USAGE"}.get(error.status, "ERROR")
    lines = [f"{word}: {error.message}"]
    lines += [f"  - {d}" for d in error.details]
    lines.append(error.advice)
    return "\n".join(lines)
