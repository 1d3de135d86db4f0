"""What an installation is, read-only: generation, pending steps, settings, backups, app state."""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

from upgrader.backup import Backup, default_backup_root, list_backups
from upgrader.config import ConfigPlan, plan_config
from upgrader.errors import DatabaseInUse
from upgrader.i18n import Text, _
from upgrader.installation import Installation
from upgrader.loader import load_catalog
from upgrader.locks import DEFAULT_LOCK_TIMEOUT_MINUTES, AppLock, check_app_closed
from upgrader.planner import Plan, make_plan
from upgrader.snapshot import open_database
from upgrader.upgrade import RunStatus


@dataclass(frozen=True)
class Backups:
    """The backup folders of an installation: the usable ones newest first, then the unusable ones."""

    usable: list[Backup]
    unusable: list[tuple[Path, str | Text]]  # (folder, why it cannot be used: English, or a Text)


def find_backups(root: Path) -> Backups:
    """list_backups' one list (usable backups, then (folder, reason) pairs) as two typed ones."""
    found = list_backups(root)
    return Backups([b for b in found if isinstance(b, Backup)], [b for b in found if not isinstance(b, Backup)])


@dataclass(frozen=True)
class InstallationStatus:
    """--status: what the installation is and what an upgrade would do, read without a lock or a copy."""

    installation: Installation
    plan: Plan
    config: ConfigPlan
    stale_locks: tuple[AppLock, ...]
    backups: list[Backup]  # the usable ones, newest first
    app_open: str | None  # why Wareflow EMS seems open, in the user's language; None: it is closed
    status: ClassVar[Literal[RunStatus.STATUS]] = RunStatus.STATUS


def installation_status(
    installation: Installation, target: str | None = None, backup_root: Path | None = None
) -> InstallationStatus:
    catalog = load_catalog()
    with closing(open_database(installation.database)) as conn:
        plan = make_plan(conn, catalog, catalog.resolve_target(target))
        config = plan_config(
            installation.config, plan.target.generation, from_generation=plan.current.generation, root=installation.root
        )
        app_open, stale = None, []
        try:
            stale = check_app_closed(conn, config.timeout_minutes(DEFAULT_LOCK_TIMEOUT_MINUTES))
        except DatabaseInUse as exc:
            app_open = _("; ").join(exc.shown()[1])  # a list separator: French puts a space before ";"
    backups = find_backups(backup_root or default_backup_root(installation))
    return InstallationStatus(installation, plan, config, tuple(stale), backups.usable, app_open)
