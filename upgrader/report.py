"""Every text the user reads, and the --json object scripts read: the one place output is formatted.

Symbols (✔ ✘ → ⚠) fall back to ASCII on consoles that cannot show them (upgrader.console).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path
from typing import cast

from upgrader import __version__
from upgrader.backup import Backup
from upgrader.config import ConfigPlan, flatten
from upgrader.errors import EXIT_OK, UpgradeError
from upgrader.executor import Outcome
from upgrader.i18n import _
from upgrader.installation import Installation
from upgrader.loader import Step
from upgrader.locks import AppLock
from upgrader.planner import Plan
from upgrader.preflight import SpaceNeeds, human_size
from upgrader.restore import RestoreResult
from upgrader.status import Backups, InstallationStatus
from upgrader.upgrade import DryRun, Preview, RunStatus, Upgraded, UpgradeResult, UpToDate
from upgrader.validator import Check

OK, FAIL, WARN = "✔", "✘", "⚠"


def _version(step: Step) -> str:
    return f"{step.label} (Wareflow EMS {step.releases})"


def _by_step(outcomes: list[Outcome]) -> list[tuple[Step, list[Outcome]]]:
    return [(step, list(group)) for step, group in groupby(outcomes, key=lambda o: o.step)]


def _changes(outcomes: list[Outcome]) -> str:
    applied = sum(o.applied for o in outcomes)
    skipped = len(outcomes) - applied
    text = f"{applied} change{'s' if applied != 1 else ''}"
    return text + (f", {skipped} already present" if skipped else "")


def _notes(recovered: str | None, stale_locks: tuple[AppLock, ...]) -> list[str]:
    notes = [f"Note: {recovered}"] if recovered else []
    notes += [
        f"Note: an old lock of Wareflow EMS is left in the database and was ignored ({lock.describe()})."
        for lock in stale_locks
    ]
    return notes + ([""] if notes else [])


def _header(preview: Preview) -> list[str]:
    install = preview.installation
    lines = [f"Installation: {install.root}", f"Database:     {install.database}", ""]
    return lines + _notes(preview.recovered, preview.stale_locks)


def render_plan(preview: Preview, disk: bool = True) -> str:
    """The plan, as the question shows it (`disk`: the room a real run needs; a dry run says it at its end)."""
    plan = preview.plan
    lines = _header(preview) + [
        "Plan",
        f"  Database is:   {_version(plan.current)}",
        f"  Upgrading to:  {_version(plan.target)}",
    ]
    if plan.detection.beyond:
        lines.append("  Already there, from later releases (kept, not redone):")
        lines += [f"    - {d}" for d in plan.detection.beyond]
    for step, outcomes in _by_step(list(plan.outcomes)):
        lines.append(f"  {step.label}: {step.description}")
        lines.append(f"       ({_changes(outcomes)})")
        lines += [f"       - already present: {o.operation.describe()}" for o in outcomes if not o.applied]
    if plan.app_migrations:
        lines.append(
            f"  Record {len(plan.app_migrations)} finished migration(s) so Wareflow EMS starts with nothing pending"
        )
    lines += _plan_settings_lines(preview.config)
    if disk:
        lines.append(f"  Disk: {_disk_need(preview.space)}")
    return "\n".join(lines)


def _plan_settings_lines(config: ConfigPlan) -> list[str]:
    """One line each for the values the old release did not read and the defaults written out."""
    if not (config.not_read or config.explicit):
        return []
    lines = []
    if config.not_read:
        source = cast(Path, config.source)  # a value not read was read from a settings file
        lines.append(
            f"  Settings: {len(config.not_read)} value(s) in {source.name} that Wareflow EMS "
            f"({config.releases}) did not read are kept as comments, not used"
        )
    if config.explicit:
        names = ", ".join(f"{e.section}.{e.key}" for e in config.explicit)
        lines.append(f"  Settings: {names} written out as the release used them (the latest defaults differ)")
    return lines


def _migration_lines(outcomes: list[Outcome]) -> list[str]:
    lines = ["Database migration (one transaction)"]
    for step, step_outcomes in _by_step(outcomes):
        lines.append(f"  {OK} {step.label}  {_changes(step_outcomes)}")
    return lines


def _validation_lines(checks: list[Check]) -> list[str]:
    lines = ["Validation"]
    for c in checks:
        lines.append(f"  {OK if c.ok else FAIL} {c.name}: {c.detail}")
        lines += [f"       - {item}" for item in c.items]
    return lines


def _disk_need(space: SpaceNeeds) -> str:
    need = f"about {human_size(space.while_running)} needed, {human_size(space.free_for_work)} free"
    if space.backup_size and not space.backup_written:
        return f"{need}; the original database file itself becomes the backup"
    if space.backup_written:
        return f"{need}; {human_size(space.free_for_backup)} free where the backup goes"
    return need


def _dry_run_backup_lines(space: SpaceNeeds) -> list[str]:
    if not space.backup_size:
        return []
    return [
        "Backup",
        f"  A real run first keeps a backup of about {human_size(space.backup_size)} with its SHA-256.",
        f"  Disk: {_disk_need(space)}",
    ]


def _backup_lines(backup: Backup | None, space: SpaceNeeds) -> list[str]:
    """The backup of a real run; None: --no-backup."""
    if backup is None:
        return ["Backup", f"  {WARN} No backup was made (--no-backup)."]
    lines = [
        "Backup",
        f"  {OK} {backup.folder}",
        f"       {human_size(backup.size)}, with its SHA-256; {human_size(space.free_for_backup)} was free before it",
    ]
    if backup.privacy_problem:
        lines.append(
            f"  {WARN} Not private: {backup.privacy_problem}. Anyone who can open "
            f"{backup.folder.parent} can read this backup."
        )
    return lines


def settings_diff(before: dict, after: dict) -> list[str]:
    old, new = flatten(before), flatten(after)
    return [f"- {line}" for line in old if line not in new] + [f"+ {line}" for line in new if line not in old] or [
        "(same settings, new file format)"
    ]


def _value(value) -> str:
    return json.dumps(value, ensure_ascii=False)


def _effective_lines(config: ConfigPlan, dry_run: bool) -> list[str]:
    """Each value the old release did not read, and each default written out, in plain words."""
    release, does = f"Wareflow EMS ({config.releases})", "would keep" if dry_run else "kept"
    lines = []
    for item in config.not_read:
        used = " and ".join(f"{s}.{k} = {_value(config.effective_before.get(s, {}).get(k))}" for s, k in item.leaves)
        lines.append(
            f"  {WARN} {item.key}: the file says {_value(item.value)}, but {release} did not read it "
            f"({item.why}) and used {used}; the upgrade {does} it as a comment, not used."
        )
    written = "would write" if dry_run else "wrote"
    new_path = cast(Path, config.new_path)  # only called for a plan that writes the settings file
    for default in config.explicit:
        lines.append(
            f"  {WARN} {default.section}.{default.key}: {release} used {_value(default.value)}; the latest "
            f"release would use {_value(default.latest_default)}, so the upgrade {written} "
            f"{_value(default.value)} in {new_path.name}."
        )
    return lines


def _config_lines(config: ConfigPlan, dry_run: bool) -> list[str]:
    if config.source is None and not config.changes:
        return ["Settings", "  No settings file: Wareflow EMS uses its defaults (and writes config.yaml itself)."]
    if not config.changes and config.source is not None:  # no file and no changes returned above
        return ["Settings", f"  {OK} {config.source.name} is valid and stays as it is."]
    # a plan that changes the settings names the file it writes
    new_path, new_text = cast(Path, config.new_path), cast(str, config.new_text)
    lines = ["Settings"] + [
        f"  {'Would convert' if dry_run else OK + ' Converted'}: {c.description}" for c in config.converters
    ]
    if config.source is None:
        lines.append(
            f"  No settings file: {new_path.name} {'would be' if dry_run else 'was'} written "
            "with the values the previous release used"
        )
    if config.retire and config.source:  # (a file is retired only when there is one)
        lines.append(f"  {config.source.name} is kept as {config.retire.name}")
    lines += _effective_lines(config, dry_run)
    if dry_run:
        lines += ["  Changes to the settings (- now, + after):"]
        lines += [f"    {line}" for line in settings_diff(config.before, config.after)]
        lines += [f"  {new_path.name} would be:"] + [f"    | {line}" for line in new_text.splitlines()]
    return lines


def _whats_new(outcomes: list[Outcome]) -> list[str]:
    steps = [step for step, step_outcomes in _by_step(outcomes) if any(o.applied for o in step_outcomes)]
    return ["What's new:"] + [f"  • {step.description}" for step in steps] if steps else []


def _ran_lines(
    backup: list[str], outcomes: list[Outcome], checks: list[Check], config: ConfigPlan, dry_run: bool
) -> list[str]:
    """Backup, migration, validation, settings: each part followed by a blank line."""
    lines: list[str] = []
    for part in (
        backup,
        _migration_lines(outcomes) + [""] + _validation_lines(checks) if checks else [],
        _config_lines(config, dry_run),
    ):
        lines += part + ([""] if part else [])
    return lines


def _dry_run_outcome(result: DryRun) -> str:
    space = result.space
    lines = _ran_lines(_dry_run_backup_lines(space), result.outcomes, result.checks, result.config, True)
    lines.append(
        f"DRY RUN: every step and check above ran on a temporary copy, which was deleted. "
        f"Nothing in {result.installation.root} was changed."
    )
    lines.append(
        f"A real run would take about {max(1, round(result.estimated_seconds))} s and "
        f"{human_size(space.while_running)} of disk space while it runs "
        f"(the backup, {human_size(space.backup_size)}, stays)."
    )
    return "\n".join(lines)


def _upgraded_outcome(result: Upgraded) -> str:
    lines = _ran_lines(_backup_lines(result.backup, result.space), result.outcomes, result.checks, result.config, False)
    lines.append(f"Done: the database is now {_version(result.plan.target)} ({result.seconds:.1f} s).")
    lines += _whats_new(result.outcomes)
    if result.config.read_after:
        lines.append(f"Wareflow EMS will read its settings from {result.config.read_after}")
    if result.backup:
        lines.append(
            f'To undo: wems-upgrade --data-dir "{result.installation.root}" --restore "{result.backup.folder}"'
        )
    return "\n".join(lines)


def render_outcome(result: UpgradeResult) -> str:
    """Everything after the plan: backup, migration, validation, settings, summary."""
    match result:
        case UpToDate():
            return f"Nothing to do: the database is already {_version(result.plan.target)}."
        case DryRun():
            return _dry_run_outcome(result)
        case Upgraded():
            return _upgraded_outcome(result)


def render_result(result: UpgradeResult) -> str:
    match result:
        case UpToDate():
            return "\n".join(_header(result.preview)) + render_outcome(result)
        case DryRun():
            return render_plan(result.preview, disk=False) + "\n\n" + render_outcome(result)
        case Upgraded():
            return render_plan(result.preview) + "\n\n" + render_outcome(result)


def render_error(error: UpgradeError, log_path: Path | None = None) -> str:
    word = {"refused": _("REFUSED: "), "rolled_back": _("FAILED: "), "usage": _("USAGE: "), "stopped": ""}.get(
        error.status, _("ERROR: ")
    )
    message, details, advice = error.shown()
    lines = [f"{word}{message}"] + [f"  - {d}" for d in details] + [advice]
    if log_path:
        lines.append(_("Details for support: {log}").format(log=log_path))
    return "\n".join(lines)


def render_backups(backups: Backups) -> str:
    if not (backups.usable or backups.unusable):
        return "No backups found."
    lines = []
    for number, item in enumerate(backups.usable, 1):
        m = item.manifest
        before = m.get("generation_before") or "-"
        lines.append(
            f"{number:>3}. {item.created_at[:19].replace('T', ' ')} UTC  {m['kind']:<24} "
            f"before: {before:<4} {human_size(item.size):>9}  {item.folder}"
        )
    for number, (folder, reason) in enumerate(backups.unusable, len(backups.usable) + 1):
        lines.append(
            f"{number:>3}. ({reason if reason.startswith('incomplete') else 'unreadable: ' + reason})  {folder}"
        )
    return "\n".join(lines)


def render_restore(result: RestoreResult) -> str:
    lines = [f"Note: {result.recovered}"] if result.recovered else []
    lines.append(f"{OK} Restored {result.installation.root} from {result.restored.folder}.")
    if result.saved:
        lines.append(f"The state before this restore was saved in {result.saved.folder}")
        lines.append(
            f'To undo this restore: wems-upgrade --data-dir "{result.installation.root}" '
            f'--restore "{result.saved.folder}"'
        )
    else:
        lines.append("There was no readable database before this restore, so no copy of it was saved.")
    return "\n".join(lines)


def render_status(status: InstallationStatus) -> str:
    config, backups, plan = status.config, status.backups, status.plan
    lines = [f"Installation: {status.installation.root}", f"Database:  {_version(plan.current)}"]
    steps = [s for s, outcomes in _by_step(list(plan.outcomes)) if any(o.applied for o in outcomes)]
    if steps or plan.app_migrations:
        lines.append(f"Pending:   upgrade to {_version(plan.target)}")
        lines += [f"           - {s.label}: {s.description}" for s in steps]
        if plan.app_migrations:
            lines.append(f"           - record {len(plan.app_migrations)} finished app migration(s)")
    else:
        lines.append(f"Pending:   nothing, the database is already {_version(plan.target)}")
    if config.source is None:
        lines.append("Settings:  none (the app uses its defaults)")
    else:
        shape = {"json-flat": "flat JSON of the early bootstrapper", "json-nested": "JSON", "yaml": "YAML"}
        will = f"; will become {cast(Path, config.new_path).name}" if config.changes else ""
        lines.append(f"Settings:  {config.source.name} ({shape[config.shape]}, valid){will}")
    newest = (
        f", newest {backups[0].created_at[:16].replace('T', ' ')} UTC ({backups[0].folder.name})" if backups else ""
    )
    lines.append(f"Backups:   {len(backups)}{newest}")
    lines.append(f"App:       {'open: ' + status.app_open if status.app_open else 'closed'}")
    return "\n".join(lines + [""] + _notes(None, status.stale_locks)).rstrip()


def _terminated(statement: str) -> str:
    return statement if statement.rstrip().endswith(";") else statement.rstrip() + ";"


def render_sql(plan: Plan, installation: Installation) -> str:
    """--show-sql: the exact statements the plan runs, per step and operation, as SQL comments and
    statements (like Django's sqlmigrate). Bookkeeping and checks are named, not shown."""
    lines = [
        f"-- Installation: {installation.root}",
        f"-- Database is:  {_version(plan.current)}",
        f"-- Upgrading to: {_version(plan.target)}",
    ]
    if plan.nothing_to_do:
        return "\n".join(lines + ["-- Nothing to do: no SQL would run."])
    lines += [
        "-- wems-upgrade runs these statements in ONE transaction, with PRAGMA foreign_keys=OFF, and commits only",
        "-- if every check passes. Nothing was changed.",
        "",
    ]
    for step, outcomes in _by_step(list(plan.outcomes)):
        lines.append(f"-- {step.label}: {step.description}")
        for outcome in outcomes:
            if not outcome.applied:
                lines.append(f"-- already present, skipped: {outcome.operation.describe()}")
                continue
            lines.append(f"-- {outcome.operation.describe()}")
            lines += [_terminated(statement) for statement in outcome.statements]
        lines.append("")
    if plan.app_migrations:
        lines.append(
            f"-- Then {len(plan.app_migrations)} finished migration(s) are recorded in the app's migrations table:"
        )
        lines += [f"--   {name}" for name in plan.app_migrations]
    lines.append("-- Then each step is recorded in wems_upgrade_history.")
    return "\n".join(lines)


def _json_head(status: str, plan: Plan, installation: Installation) -> dict:
    """The keys every --json object about a plan starts with."""
    return {
        "wems_upgrade": __version__,
        "status": status,
        "exit_code": EXIT_OK,
        "installation": str(installation.root),
        "database": str(installation.database),
        "from": {"generation": plan.current.label, "releases": plan.current.releases},
        "to": {"generation": plan.target.label, "releases": plan.target.releases},
    }


def sql_json(plan: Plan, installation: Installation, log_path: Path | None = None) -> dict:
    """--show-sql --json: the statements per step and operation, and all of them in order."""
    return {
        **_json_head("show_sql", plan, installation),
        "steps": [
            {
                "generation": step.label,
                "description": step.description,
                "operations": [
                    {"operation": o.operation.describe(), "applied": o.applied, "statements": list(o.statements)}
                    for o in outcomes
                ],
            }
            for step, outcomes in _by_step(list(plan.outcomes))
        ],
        "statements": [statement for o in plan.outcomes for statement in o.statements],
        "app_migrations": list(plan.app_migrations),
        "error": None,
        "log": str(log_path) if log_path else None,
    }


# --- machine-readable -------------------------------------------------------------------------


def result_json(result: UpgradeResult, log_path: Path | None = None) -> dict:
    match result:
        case UpToDate():
            return _run_json(result.status, result.installation, result.plan, result.config, log_path)
        case DryRun():
            return _run_json(
                result.status,
                result.installation,
                result.plan,
                result.config,
                log_path,
                result.outcomes,
                result.checks,
                result.seconds,
            )
        case Upgraded():
            return _run_json(
                result.status,
                result.installation,
                result.plan,
                result.config,
                log_path,
                result.outcomes,
                result.checks,
                result.seconds,
                result.backup,
                recorded=True,
            )


def status_json(status: InstallationStatus, log_path: Path | None = None) -> dict:
    return _run_json(status.status, status.installation, status.plan, status.config, log_path)


def _run_json(
    status: RunStatus,
    installation: Installation,
    plan: Plan,
    config: ConfigPlan,
    log_path: Path | None,
    outcomes: Sequence[Outcome] = (),
    checks: Sequence[Check] = (),
    seconds: float = 0.0,
    backup: Backup | None = None,
    recorded: bool = False,
) -> dict:
    """`outcomes`: what ran on a copy (else the plan's); `recorded`: the app's migrations were recorded."""
    return {
        **_json_head(status, plan, installation),
        "steps": [
            {
                "generation": step.label,
                "description": step.description,
                "applied": sum(o.applied for o in outs),
                "already_present": sum(not o.applied for o in outs),
            }
            for step, outs in _by_step(list(outcomes or plan.outcomes))
        ],
        "app_migrations_recorded": list(plan.app_migrations) if recorded else [],
        "backup": str(backup.folder) if backup else None,
        "backup_private": backup.privacy_problem is None if backup else None,
        "checks": [
            {"name": c.name, "ok": c.ok, "detail": c.detail, "problems": list(c.problems), "items": list(c.items)}
            for c in checks
        ],
        "config": None
        if not config.source
        else {
            "file": config.source.name,
            "shape": config.shape,
            "converted": config.changes,
            "read_after": str(config.read_after),
            "kept_as": config.retire.name if config.retire else None,
        },
        "seconds": round(seconds, 3),
        "error": None,
        "log": str(log_path) if log_path else None,
    }


def error_json(error: UpgradeError, installation: Path | None, log_path: Path | None = None) -> dict:
    return {
        "wems_upgrade": __version__,
        "status": error.status,
        "exit_code": error.exit_code,
        "installation": str(installation.resolve()) if installation else None,
        "error": {
            "message": error.message,
            "details": error.details,
            "advice": error.advice,
            "reference": error.reference,
        },
        "log": str(log_path) if log_path else None,
    }


def to_json(value: dict) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2)


@dataclass(frozen=True)
class SiteOutcome:
    folder: Path
    exit_code: int
    summary: str


def render_sites(outcomes: list[SiteOutcome], total: int | None = None) -> str:
    width = max([len("installation")] + [len(str(o.folder)) for o in outcomes])
    lines = ["Summary of all installations", f"  {'installation':<{width}}  exit  result"]
    lines += [
        f"  {o.folder!s:<{width}}  {o.exit_code:>4}  {OK if o.exit_code == 0 else FAIL} {o.summary}" for o in outcomes
    ]
    failed = sum(o.exit_code != 0 for o in outcomes)
    lines.append(f"  {len(outcomes) - failed} of {len(outcomes)} installation(s) succeeded.")
    if total and total > len(outcomes):
        lines.append(f"  {total - len(outcomes)} more installation(s) not started: the run was stopped.")
    return "\n".join(lines)
