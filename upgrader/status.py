"""What an installation is, read-only: generation, pending steps, settings, backups, app state."""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from upgrader.backup import default_backup_root, list_backups
from upgrader.config import ConfigPlan, plan_config
from upgrader.errors import DatabaseInUse
from upgrader.installation import Installation
from upgrader.loader import load_catalog
from upgrader.locks import DEFAULT_LOCK_TIMEOUT_MINUTES, check_app_closed
from upgrader.planner import make_plan
from upgrader.snapshot import open_database
from upgrader.upgrade import UpgradeResult


@dataclass(frozen=True)
class Status:
    result: UpgradeResult
    config: ConfigPlan
    backups: list
    app_open: str | None


def installation_status(
    installation: Installation, target: str | None = None, backup_root: Path | None = None
) -> Status:
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
            app_open = "; ".join(exc.details)
    result = UpgradeResult("status", installation, plan, config=config, stale_locks=stale)
    backups = list_backups(backup_root or default_backup_root(installation))
    return Status(result, config, backups, app_open)
