"""The files an upgrade creates, changes or renames in an installation, known before it runs.

Computed from what `prepare` already read (no I/O): the dry run shows the list and gives it in its
--json as `files`, a list of {"path", "action", "to"}:

- `action` is "create", "change" or "rename"; `to` is the new name of a renamed file, else null.
- `path` and `to` are full paths. A `*` in a name stands for the date and time of the real run
  (the backup folder's and the log's names are only known then).
- A created folder holds what is made in it (the backup folder: the original database, the
  settings files, manifest.json); a folder missing above a created path (backups/, logs/) is
  created with it.
- A database that changes takes its SQLite companions with it: its `-wal` and `-shm` files are
  folded into it and go away (every row is kept).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from upgrader.config import replacements
from upgrader.installation import CONFIG_NAMES
from upgrader.upgrade import Preview

Action = Literal["create", "change", "rename"]

#: Stands for the date and time of the run in a name only known when the run happens.
STAMP = "*"
#: The log of a run of the command line that may change the installation (upgrader.runlog.start).
RUN_LOG = Path("logs") / f"wems-upgrade-{STAMP}.log"
#: SQLite's header byte that says a database is in WAL mode (its "file format write version").
_WAL_MODE = 2


@dataclass(frozen=True)
class FileChange:
    """One file or folder a real run creates, changes or renames; `what` says which it is:
    "database", "database-no-backup",
    "database-folded", "settings", "settings-kept", "settings-old", "backup", "log"."""

    path: Path
    action: Action
    what: str
    to: Path | None = None

    def as_json(self) -> dict:
        return {"path": str(self.path), "action": self.action, "to": str(self.to) if self.to else None}


def _in_wal_mode(preview: Preview) -> bool:
    """The database is in WAL mode, or has a WAL: the fold before the copy rewrites it."""
    main, wal = preview.first.database[0], preview.first.database[1]
    header = main[3]
    return wal is not None or (len(header) > 18 and header[18] == _WAL_MODE)


def _existed(preview: Preview, path: Path) -> bool:
    """Whether the settings file `path` existed when the run first read the installation."""
    root = preview.installation.root
    names = [root / name for name in CONFIG_NAMES]
    return path in names and preview.first.settings[names.index(path)] is not None


def planned_files(preview: Preview, log: bool = True) -> list[FileChange]:
    """What the real run of `preview` creates, changes or renames; `log`: the command line's log too."""
    if preview.nothing_to_do:
        return []
    installation, plan, config, options = preview.installation, preview.plan, preview.config, preview.options
    files: list[FileChange] = []
    if not plan.nothing_to_do:
        files.append(
            FileChange(installation.database, "change", "database" if options.backup else "database-no-backup")
        )
    elif _in_wal_mode(preview):
        files.append(FileChange(installation.database, "change", "database-folded"))
    for target, temp, aside, keep in replacements(config):
        if temp is None:
            files.append(FileChange(target, "rename", "settings-kept", aside))
        elif keep:
            files.append(FileChange(target, "change", "settings"))
            files.append(FileChange(aside, "create", "settings-old"))
        else:
            files.append(FileChange(target, "change" if _existed(preview, target) else "create", "settings"))
    if options.backup:
        folder = options.backup_root / f"before_upgrade_{plan.target.label}_{STAMP}"
        files.append(FileChange(folder, "create", "backup"))
    if log:
        files.append(FileChange(installation.root / RUN_LOG, "create", "log"))
    return files
