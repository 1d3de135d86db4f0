"""Every text the user reads, and the --json object scripts read: the one place output is formatted.

Symbols (✔ ✘ → ⚠) fall back to ASCII on consoles that cannot show them (upgrader.console).
Screens are in the user's language (upgrader.i18n); the --json builders never translate.
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
from upgrader.files import STAMP, FileChange, planned_files
from upgrader.i18n import N_, Text, _, english, localize, ngettext
from upgrader.installation import Installation
from upgrader.loader import Step
from upgrader.locks import AppLock
from upgrader.planner import Plan
from upgrader.preflight import SpaceNeeds, human_size
from upgrader.restore import RestoreResult
from upgrader.status import Backups, InstallationStatus
from upgrader.updates import NewerRelease
from upgrader.upgrade import DryRun, Preview, RunStatus, Upgraded, UpgradeResult, UpToDate
from upgrader.validator import Check

OK, FAIL, WARN = "✔", "✘", "⚠"

#: The checks' names are identifiers (--json, the log); the screen shows these labels.
CHECK_LABELS = {
    "rows": N_("rows"),
    "values": N_("values"),
    "documents": N_("documents"),
    "schema": N_("schema"),
    "integrity": N_("integrity"),
    "foreign_keys": N_("foreign_keys"),
    "app_operations": N_("app_operations"),
}
#: What a real run does to each file (upgrader.files), as the list of files shows it.
FILE_ACTIONS = {"create": N_("new"), "change": N_("changed"), "rename": N_("renamed")}
#: Why each file is in the list of files (upgrader.files.FileChange.what).
FILE_REASONS = {
    "database": N_("the upgraded database takes its place; the original is kept as the backup"),
    "database-no-backup": N_("the upgraded database takes its place (no backup: --no-backup)"),
    "database-folded": N_("its WAL is folded into it; every row is kept"),
    "settings": N_("the settings, as the new release reads them"),
    "settings-kept": N_("kept as it was, no longer read"),
    "settings-old": N_("the settings file as it was"),
    "backup": N_("the backup (the original database, the settings files, manifest.json)"),
    "log": N_("the log of the run, for support"),
}
#: What each installation's run did, as the command line sums it up for the table of several sites.
SITE_SUMMARIES = (
    N_("upgraded"),
    N_("up to date"),
    N_("dry run"),
    N_("listed"),
    N_("status shown"),
    N_("SQL shown"),
    N_("restored"),
)
SETTINGS_SHAPES = {"json-flat": N_("flat JSON of the early bootstrapper"), "json-nested": "JSON", "yaml": "YAML"}


def _version(step: Step) -> str:
    return f"{step.label} (Wareflow EMS {_(step.releases)})"


def _check_label(check: Check) -> str:
    return _(CHECK_LABELS[check.name]) if check.name in CHECK_LABELS else check.name


def _by_step(outcomes: list[Outcome]) -> list[tuple[Step, list[Outcome]]]:
    return [(step, list(group)) for step, group in groupby(outcomes, key=lambda o: o.step)]


def _changes(outcomes: list[Outcome]) -> str:
    applied = sum(o.applied for o in outcomes)
    skipped = len(outcomes) - applied
    text = ngettext("{n} change", "{n} changes", applied).format(n=applied)
    return text + (
        ngettext(", {n} already present", ", {n} already present", skipped).format(n=skipped) if skipped else ""
    )


def _notes(recovered: str | Text | None, stale_locks: tuple[AppLock, ...]) -> list[str]:
    notes = [_("Note: {note}").format(note=localize(recovered))] if recovered else []
    notes += [
        _("Note: an old lock of Wareflow EMS is left in the database and was ignored ({lock}).").format(
            lock=localize(lock.describe())
        )
        for lock in stale_locks
    ]
    return notes + ([""] if notes else [])


def _header(preview: Preview) -> list[str]:
    install = preview.installation
    lines = [
        _("Installation: {root}").format(root=install.root),
        _("Database:     {database}").format(database=install.database),
        "",
    ]
    return lines + _notes(preview.recovered, preview.stale_locks)


def render_plan(preview: Preview, disk: bool = True) -> str:
    """The plan, as the question shows it (`disk`: the room a real run needs and the files it
    changes; a dry run says them at its end)."""
    plan = preview.plan
    lines = _header(preview) + [
        _("Plan"),
        _("  Database is:   {version}").format(version=_version(plan.current)),
        _("  Upgrading to:  {version}").format(version=_version(plan.target)),
    ]
    if plan.detection.beyond:
        lines.append(_("  Already there, from later releases (kept, not redone):"))
        lines += [f"    - {localize(d)}" for d in plan.detection.beyond_texts]
    for step, outcomes in _by_step(list(plan.outcomes)):
        lines.append(_("  {label}: {description}").format(label=step.label, description=_(step.description)))
        lines.append(f"       ({_changes(outcomes)})")
        lines += [
            _("       - already present: {operation}").format(operation=localize(o.operation.text))
            for o in outcomes
            if not o.applied
        ]
    if plan.app_migrations:
        lines.append(
            _("  Record {n} finished migration(s) so Wareflow EMS starts with nothing pending").format(
                n=len(plan.app_migrations)
            )
        )
    lines += _plan_settings_lines(preview.config)
    if disk:
        lines.append(_("  Disk: {need}").format(need=_disk_need(preview.space)))
        lines += [""] + _files_lines(preview, dry_run=False)
    return "\n".join(lines)


def _plan_settings_lines(config: ConfigPlan) -> list[str]:
    """One line each for the values the old release did not read and the defaults written out."""
    if not (config.not_read or config.explicit):
        return []
    lines = []
    if config.not_read:
        source = cast(Path, config.source)  # a value not read was read from a settings file
        lines.append(
            _(
                "  Settings: {n} value(s) in {file} that Wareflow EMS ({releases}) did not read are kept "
                "as comments, not used"
            ).format(n=len(config.not_read), file=source.name, releases=localize(config.releases))
        )
    if config.explicit:
        names = ", ".join(f"{e.section}.{e.key}" for e in config.explicit)
        lines.append(
            _("  Settings: {names} written out as the release used them (the latest defaults differ)").format(
                names=names
            )
        )
    return lines


def _migration_lines(outcomes: list[Outcome]) -> list[str]:
    lines = [_("Database migration (one transaction)")]
    for step, step_outcomes in _by_step(outcomes):
        lines.append(f"  {OK} {step.label}  {_changes(step_outcomes)}")
    return lines


def _validation_lines(checks: list[Check]) -> list[str]:
    lines = [_("Validation")]
    for c in checks:
        lines.append(
            _("  {mark} {name}: {detail}").format(mark=OK if c.ok else FAIL, name=_check_label(c), detail=c.shown)
        )
        lines += [f"       - {item}" for item in c.shown_items]
    return lines


def _disk_need(space: SpaceNeeds) -> str:
    need = _("about {needed} needed, {free} free").format(
        needed=human_size(space.while_running), free=human_size(space.free_for_work)
    )
    if space.backup_size and not space.backup_written:
        return _("{need}; the original database file itself becomes the backup").format(need=need)
    if space.backup_written:
        return _("{need}; {free} free where the backup goes").format(need=need, free=human_size(space.free_for_backup))
    return need


def _dry_run_backup_lines(space: SpaceNeeds) -> list[str]:
    if not space.backup_size:
        return []
    return [
        _("Backup"),
        _("  A real run first keeps a backup of about {size} with its SHA-256.").format(
            size=human_size(space.backup_size)
        ),
        _("  Disk: {need}").format(need=_disk_need(space)),
    ]


def _backup_lines(backup: Backup | None, space: SpaceNeeds) -> list[str]:
    """The backup of a real run; None: --no-backup."""
    if backup is None:
        return [_("Backup"), _("  {mark} No backup was made (--no-backup).").format(mark=WARN)]
    lines = [
        _("Backup"),
        f"  {OK} {backup.folder}",
        _("       {size}, with its SHA-256; {free} was free before it").format(
            size=human_size(backup.size), free=human_size(space.free_for_backup)
        ),
    ]
    if backup.privacy_problem:
        lines.append(
            _("  {mark} Not private: {problem}. Anyone who can open {folder} can read this backup.").format(
                mark=WARN, problem=localize(backup.privacy_problem), folder=backup.folder.parent
            )
        )
    return lines


def _shown_path(path: Path, root: Path) -> str:
    """A path as the list of files shows it: inside the installation, from its folder; `*`: <date>."""
    try:
        text = str(path.relative_to(root))
    except ValueError:
        text = str(path)
    return text.replace(STAMP, "<date>")


def _file_line(change: FileChange, root: Path, width: int) -> str:
    action = f"{_(FILE_ACTIONS[change.action]):<{width}}"
    what = change.what
    if change.to is not None:
        return _("  {action}  {path} -> {to}: {why}").format(
            action=action,
            path=_shown_path(change.path, root),
            to=_shown_path(change.to, root),
            why=_(FILE_REASONS[what]),
        )
    return _("  {action}  {path}: {why}").format(
        action=action, path=_shown_path(change.path, root), why=_(FILE_REASONS[what])
    )


def _files_lines(preview: Preview, dry_run: bool) -> list[str]:
    """The files a real run creates, changes or renames (upgrader.files)."""
    files = planned_files(preview)
    if not files:
        return []
    width = max(len(_(FILE_ACTIONS[f.action])) for f in files)
    heading = _("Files a real run would modify") if dry_run else _("Files this upgrade will modify")
    return [heading] + [_file_line(f, preview.installation.root, width) for f in files]


def settings_diff(before: dict, after: dict) -> list[str]:
    old, new = flatten(before), flatten(after)
    return [f"- {line}" for line in old if line not in new] + [f"+ {line}" for line in new if line not in old] or [
        _("(same settings, new file format)")
    ]


def _value(value) -> str:
    return json.dumps(value, ensure_ascii=False)


def _effective_lines(config: ConfigPlan, dry_run: bool) -> list[str]:
    """Each value the old release did not read, and each default written out, in plain words."""
    release = f"Wareflow EMS ({localize(config.releases)})"
    lines = []
    for item in config.not_read:
        used = _(" and ").join(f"{s}.{k} = {_value(config.effective_before.get(s, {}).get(k))}" for s, k in item.leaves)
        text = (
            _(
                "  {mark} {key}: the file says {value}, but {release} did not read it ({why}) and used {used}; "
                "the upgrade would keep it as a comment, not used."
            )
            if dry_run
            else _(
                "  {mark} {key}: the file says {value}, but {release} did not read it ({why}) and used {used}; "
                "the upgrade kept it as a comment, not used."
            )
        )
        lines.append(
            text.format(
                mark=WARN, key=item.key, value=_value(item.value), release=release, why=localize(item.why), used=used
            )
        )
    new_path = cast(Path, config.new_path)  # only called for a plan that writes the settings file
    for default in config.explicit:
        text = (
            _(
                "  {mark} {key}: {release} used {value}; the latest release would use {latest}, "
                "so the upgrade would write {value} in {file}."
            )
            if dry_run
            else _(
                "  {mark} {key}: {release} used {value}; the latest release would use {latest}, "
                "so the upgrade wrote {value} in {file}."
            )
        )
        lines.append(
            text.format(
                mark=WARN,
                key=f"{default.section}.{default.key}",
                release=release,
                value=_value(default.value),
                latest=_value(default.latest_default),
                file=new_path.name,
            )
        )
    return lines


def _config_lines(config: ConfigPlan, dry_run: bool) -> list[str]:
    if config.source is None and not config.changes:
        return [
            _("Settings"),
            _("  No settings file: Wareflow EMS uses its defaults (and writes config.yaml itself)."),
        ]
    if not config.changes and config.source is not None:  # no file and no changes returned above
        return [
            _("Settings"),
            _("  {mark} {file} is valid and stays as it is.").format(mark=OK, file=config.source.name),
        ]
    # a plan that changes the settings names the file it writes
    new_path, new_text = cast(Path, config.new_path), cast(str, config.new_text)
    lines = [_("Settings")] + [
        (
            _("  Would convert: {description}").format(description=localize(c.description))
            if dry_run
            else _("  {mark} Converted: {description}").format(mark=OK, description=localize(c.description))
        )
        for c in config.converters
    ]
    if config.source is None:
        lines.append(
            (
                _("  No settings file: {file} would be written with the values the previous release used")
                if dry_run
                else _("  No settings file: {file} was written with the values the previous release used")
            ).format(file=new_path.name)
        )
    if config.retire and config.source:  # (a file is retired only when there is one)
        lines.append(_("  {file} is kept as {kept}").format(file=config.source.name, kept=config.retire.name))
    lines += _effective_lines(config, dry_run)
    if dry_run:
        lines += [_("  Changes to the settings (- now, + after):")]
        lines += [f"    {line}" for line in settings_diff(config.before, config.after)]
        lines += [_("  {file} would be:").format(file=new_path.name)] + [
            f"    | {line}" for line in new_text.splitlines()
        ]
    return lines


def _whats_new(outcomes: list[Outcome]) -> list[str]:
    steps = [step for step, step_outcomes in _by_step(outcomes) if any(o.applied for o in step_outcomes)]
    return [_("What's new:")] + [f"  • {_(step.description)}" for step in steps] if steps else []


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
    files = _files_lines(result.preview, dry_run=True)
    lines += files + ([""] if files else [])
    lines.append(
        _(
            "DRY RUN: every step and check above ran on a temporary copy, which was deleted. "
            "Nothing in {root} was changed."
        ).format(root=result.installation.root)
    )
    lines.append(
        _(
            "A real run would take about {seconds} s and {size} of disk space while it runs "
            "(the backup, {backup}, stays)."
        ).format(
            seconds=max(1, round(result.estimated_seconds)),
            size=human_size(space.while_running),
            backup=human_size(space.backup_size),
        )
    )
    return "\n".join(lines)


def _upgraded_outcome(result: Upgraded) -> str:
    lines = _ran_lines(_backup_lines(result.backup, result.space), result.outcomes, result.checks, result.config, False)
    lines.append(
        _("Done: the database is now {version} ({seconds} s).").format(
            version=_version(result.plan.target), seconds=f"{result.seconds:.1f}"
        )
    )
    lines += _whats_new(result.outcomes)
    if result.config.read_after:
        lines.append(_("Wareflow EMS will read its settings from {file}").format(file=result.config.read_after))
    if result.backup:
        lines.append(
            _('To undo: wems-upgrade --data-dir "{root}" --restore "{backup}"').format(
                root=result.installation.root, backup=result.backup.folder
            )
        )
    lines.append(_("You can now start Wareflow EMS again."))
    return "\n".join(lines)


def render_outcome(result: UpgradeResult) -> str:
    """Everything after the plan: backup, migration, validation, settings, summary."""
    match result:
        case UpToDate():
            return _("Nothing to do: the database is already {version}.").format(version=_version(result.plan.target))
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


def render_update(newer: NewerRelease) -> str:
    """A newer wems-upgrade is published: which, and where to get it. Nothing is downloaded."""
    return "\n".join(
        [
            _("A newer wems-upgrade is available: {version}, at {url}").format(version=newer.version, url=newer.url),
            _("Nothing was downloaded: get it from that page when it suits you."),
        ]
    )


def _backup_date(created_at: str, length: int) -> str:
    return created_at[:length].replace("T", " ")


def render_backups(backups: Backups) -> str:
    if not (backups.usable or backups.unusable):
        return _("No backups found.")
    lines = []
    for number, item in enumerate(backups.usable, 1):
        m = item.manifest
        before = m.get("generation_before") or "-"
        lines.append(
            _("{number}. {date} UTC  {kind} before: {before} {size}  {folder}").format(
                number=f"{number:>3}",
                date=_backup_date(item.created_at, 19),
                kind=f"{m['kind']:<24}",
                before=f"{before:<4}",
                size=f"{human_size(item.size):>9}",
                folder=item.folder,
            )
        )
    for number, (folder, reason) in enumerate(backups.unusable, len(backups.usable) + 1):
        why = (
            localize(reason)
            if english(reason).startswith("incomplete")
            else _("unreadable: {reason}").format(reason=localize(reason))
        )
        lines.append(f"{number:>3}. ({why})  {folder}")
    return "\n".join(lines)


def render_restore(result: RestoreResult) -> str:
    lines = [_("Note: {note}").format(note=localize(result.recovered))] if result.recovered else []
    lines.append(
        _("{mark} Restored {root} from {backup}.").format(
            mark=OK, root=result.installation.root, backup=result.restored.folder
        )
    )
    if result.saved:
        lines.append(_("The state before this restore was saved in {backup}").format(backup=result.saved.folder))
        lines.append(
            _('To undo this restore: wems-upgrade --data-dir "{root}" --restore "{backup}"').format(
                root=result.installation.root, backup=result.saved.folder
            )
        )
    else:
        lines.append(_("There was no readable database before this restore, so no copy of it was saved."))
    lines.append(_("You can now start Wareflow EMS again."))
    return "\n".join(lines)


def render_status(status: InstallationStatus) -> str:
    config, backups, plan = status.config, status.backups, status.plan
    lines = [
        _("Installation: {root}").format(root=status.installation.root),
        _("Database:  {version}").format(version=_version(plan.current)),
    ]
    steps = [s for s, outcomes in _by_step(list(plan.outcomes)) if any(o.applied for o in outcomes)]
    if steps or plan.app_migrations:
        lines.append(_("Pending:   upgrade to {version}").format(version=_version(plan.target)))
        lines += [
            _("           - {label}: {description}").format(label=s.label, description=_(s.description)) for s in steps
        ]
        if plan.app_migrations:
            lines.append(_("           - record {n} finished app migration(s)").format(n=len(plan.app_migrations)))
    else:
        lines.append(_("Pending:   nothing, the database is already {version}").format(version=_version(plan.target)))
    if config.source is None:
        lines.append(_("Settings:  none (the app uses its defaults)"))
    else:
        shape = localize(SETTINGS_SHAPES[config.shape]) if config.shape in SETTINGS_SHAPES else config.shape
        if config.changes:
            lines.append(
                _("Settings:  {file} ({shape}, valid); will become {new}").format(
                    file=config.source.name, shape=shape, new=cast(Path, config.new_path).name
                )
            )
        else:
            lines.append(_("Settings:  {file} ({shape}, valid)").format(file=config.source.name, shape=shape))
    if backups:
        lines.append(
            _("Backups:   {n}, newest {date} UTC ({name})").format(
                n=len(backups), date=_backup_date(backups[0].created_at, 16), name=backups[0].folder.name
            )
        )
    else:
        lines.append(_("Backups:   {n}").format(n=0))
    if status.app_open:
        lines.append(_("App:       open: {why}").format(why=localize(status.app_open)))
    else:
        lines.append(_("App:       closed"))
    return "\n".join(lines + [""] + _notes(None, status.stale_locks)).rstrip()


def _terminated(statement: str) -> str:
    return statement if statement.rstrip().endswith(";") else statement.rstrip() + ";"


def render_sql(plan: Plan, installation: Installation) -> str:
    """--show-sql: the exact statements the plan runs, per step and operation, as SQL comments and
    statements (like Django's sqlmigrate). Bookkeeping and checks are named, not shown."""
    lines = [
        _("-- Installation: {root}").format(root=installation.root),
        _("-- Database is:  {version}").format(version=_version(plan.current)),
        _("-- Upgrading to: {version}").format(version=_version(plan.target)),
    ]
    if plan.nothing_to_do:
        return "\n".join(lines + [_("-- Nothing to do: no SQL would run.")])
    lines += [
        _("-- wems-upgrade runs these statements in ONE transaction, with PRAGMA foreign_keys=OFF, and commits only"),
        _("-- if every check passes. Nothing was changed."),
        "",
    ]
    for step, outcomes in _by_step(list(plan.outcomes)):
        lines.append(_("-- {label}: {description}").format(label=step.label, description=_(step.description)))
        for outcome in outcomes:
            if not outcome.applied:
                lines.append(
                    _("-- already present, skipped: {operation}").format(operation=localize(outcome.operation.text))
                )
                continue
            lines.append(f"-- {localize(outcome.operation.text)}")
            lines += [_terminated(statement) for statement in outcome.statements]
        lines.append("")
    if plan.app_migrations:
        lines.append(
            _("-- Then {n} finished migration(s) are recorded in the app's migrations table:").format(
                n=len(plan.app_migrations)
            )
        )
        lines += [f"--   {name}" for name in plan.app_migrations]
    lines.append(_("-- Then each step is recorded in wems_upgrade_history."))
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
                    {
                        "operation": english(o.operation.describe()),
                        "applied": o.applied,
                        "statements": list(o.statements),
                    }
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
                files=planned_files(result.preview),
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
    files: list[FileChange] | None = None,
) -> dict:
    """`outcomes`: what ran on a copy (else the plan's); `recorded`: the app's migrations were recorded;
    `files`: what a real run would create, change or rename (a dry run's, upgrader.files)."""
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
            {
                "name": c.name,
                "ok": c.ok,
                "detail": english(c.detail),
                "problems": [english(p) for p in c.problems],
                "items": [english(i) for i in c.items],
            }
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
        **({"files": [f.as_json() for f in files]} if files is not None else {}),
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
    summary: str | Text


def render_sites(outcomes: list[SiteOutcome], total: int | None = None) -> str:
    column = _("installation")
    width = max([len(column)] + [len(str(o.folder)) for o in outcomes])
    lines = [_("Summary of all installations"), f"  {column:<{width}}  {_('exit'):>4}  {_('result')}"]
    lines += [
        f"  {o.folder!s:<{width}}  {o.exit_code:>4}  {OK if o.exit_code == 0 else FAIL} {localize(o.summary)}"
        for o in outcomes
    ]
    failed = sum(o.exit_code != 0 for o in outcomes)
    lines.append(
        _("  {ok} of {total} installation(s) succeeded.").format(ok=len(outcomes) - failed, total=len(outcomes))
    )
    if total and total > len(outcomes):
        lines.append(_("  {n} more installation(s) not started: the run was stopped.").format(n=total - len(outcomes)))
    return "\n".join(lines)
