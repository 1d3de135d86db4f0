"""Replaces a set of installation files all or nothing, and finishes or undoes an interrupted set.

The journal is a small JSON file beside the database, written by temp file + fsync + rename.
States: "prepared" (new files written as temps; nothing replaced yet), "swapping" (each
target moved aside, then the new file renamed in), "committed" (asides to delete).
Recovery after a crash: prepared -> delete the temps; swapping -> put every aside back;
committed -> finish deleting. Rolling back a failed run takes the same path as a crash.
"""

from __future__ import annotations

import json
import os
import signal
from dataclasses import asdict, dataclass
from pathlib import Path

from upgrader.snapshot import fsync_path, remove_quietly

CRASH_ENV = "WEMS_UPGRADE_CRASH_AT"


def crashpoint(name: str) -> None:
    """Kill this process at `name` when the crash-matrix tests ask for it (SQLite-style test hook)."""
    if os.environ.get(CRASH_ENV) == name:
        os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))


def write_atomically(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write `data` to `path` through a temp file, fsync and rename: old or new, never half."""
    temp = path.with_name(f"{path.name}.wems-upgrade-tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0), mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        remove_quietly(temp)
        raise
    fsync_path(path.parent)


@dataclass
class Replacement:
    """`target` gets the content of `new` (None: target goes away); the old file waits at `aside`."""

    target: str
    new: str | None
    aside: str
    keep_aside: bool = False


def journal_path(db: Path) -> Path:
    return db.with_name(f"{db.name}.wems-upgrade-journal")


class FileSwap:
    def __init__(self, db: Path, replacements: list[Replacement], temps: list[Path] = ()):
        self.path = journal_path(db)
        self.replacements = replacements
        self.temps = [str(t) for t in temps]

    def _save(self, state: str) -> None:
        body = {"state": state, "replacements": [asdict(r) for r in self.replacements], "temps": self.temps}
        write_atomically(self.path, json.dumps(body, indent=1).encode("utf-8"))

    def prepare(self) -> None:
        self._save("prepared")

    def swap(self) -> None:
        """Move each target aside and its new file in; on any error put everything back."""
        self._save("swapping")
        crashpoint("journal_swapping")
        try:
            for index, r in enumerate(self.replacements):
                if Path(r.target).exists():
                    os.replace(r.target, r.aside)
                    crashpoint(f"aside_{index}")
                if r.new:
                    os.replace(r.new, r.target)
                    crashpoint(f"placed_{index}")
                fsync_path(Path(r.target).parent)
        except BaseException:
            undo(self.replacements, self.temps)
            remove_quietly(self.path)
            raise

    def commit(self) -> None:
        self._save("committed")
        crashpoint("journal_committed")
        finish(self.replacements, self.temps)
        remove_quietly(self.path)

    def abandon(self) -> None:
        """Before swap(): forget the journal and the temps (nothing was replaced)."""
        remove_quietly(*map(Path, self.temps), self.path)

    def rollback(self) -> None:
        """After swap(): put every target back as it was."""
        undo(self.replacements, self.temps)
        remove_quietly(self.path)


def undo(replacements: list[Replacement], temps: list[str]) -> None:
    for r in reversed(replacements):
        aside, target = Path(r.aside), Path(r.target)
        if aside.exists():
            os.replace(aside, target)
        elif r.new and not Path(r.new).exists() and target.exists():
            target.unlink()
        fsync_path(target.parent)
    remove_quietly(*map(Path, temps))


def finish(replacements: list[Replacement], temps: list[str]) -> None:
    for r in replacements:
        if not r.keep_aside:
            remove_quietly(Path(r.aside))
    remove_quietly(*map(Path, temps))


def recover(db: Path) -> str | None:
    """Finish or undo an interrupted run; return what was done, in words, or None."""
    path = journal_path(db)
    if not path.exists():
        return None
    body = json.loads(path.read_text(encoding="utf-8"))
    replacements = [Replacement(**r) for r in body["replacements"]]
    state = body["state"]
    if state == "committed":
        finish(replacements, body["temps"])
        message = "An interrupted upgrade had already finished; its leftover files were removed."
    elif state == "swapping":
        undo(replacements, body["temps"])
        message = "An interrupted upgrade was undone: the installation is back as it was before it."
    else:
        remove_quietly(*map(Path, body["temps"]))
        message = "An interrupted upgrade had changed nothing; its temporary files were removed."
    remove_quietly(path)
    return message
