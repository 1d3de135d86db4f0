"""Replaces a set of installation files all or nothing, and finishes an interrupted set.

The journal is a small JSON file beside the database, written by temp file + fsync + rename.
States:
- "prepared": new files are being written as temps; no target has been touched.
- "swapping": every temp is complete and fsynced; each target is hard-linked (else copied)
  to its `aside` name, then the temp is renamed over it, so the target path never goes missing.
- "committed": every target is in place; the asides are being deleted.

An error inside this process during "swapping" puts every aside back (nobody can have used
the new files yet). After a crash, the next run finishes instead: prepared -> delete the
temps; swapping -> place what is left, but only over targets unchanged since the journal
was written (anything else stops with a message, changing nothing more); committed -> delete asides.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
from dataclasses import asdict, dataclass
from pathlib import Path

import apsw

from upgrader.errors import UpgradeFailed
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


def file_state(path: Path) -> list | None:
    """Size and modification time of `path` (None if absent): what tells that someone changed it."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return [st.st_size, st.st_mtime_ns]


@dataclass
class Replacement:
    """`target` gets the content of `new` (None: target goes away); the old file waits at `aside`."""

    target: str
    new: str | None
    aside: str
    keep_aside: bool = False
    recorded: list | None = None


def journal_path(db: Path) -> Path:
    return db.with_name(f"{db.name}.wems-upgrade-journal")


class FileSwap:
    """One all-or-nothing replacement of files: prepare(), swap(), then complete()."""

    def __init__(self, db: Path, replacements: list[Replacement], temps: list[Path] = ()):
        self.path = journal_path(db)
        self.replacements = replacements
        self.temps = [str(t) for t in temps]
        self.state = "new"

    def _save(self, state: str) -> None:
        body = {"state": state, "replacements": [asdict(r) for r in self.replacements], "temps": self.temps}
        write_atomically(self.path, json.dumps(body, indent=1).encode("utf-8"))
        self.state = state

    def prepare(self) -> None:
        self._save("prepared")

    def swap(self) -> None:
        """Put every new file in place; on any error put everything back."""
        for r in self.replacements:
            r.recorded = file_state(Path(r.target))
        self._save("swapping")
        crashpoint("journal_swapping")
        try:
            for index, r in enumerate(self.replacements):
                place(r)
                crashpoint(f"placed_{index}")
        except BaseException:
            self.rollback()
            raise

    def complete(self) -> None:
        """After swap(): record the commit and tidy up; if the commit cannot be recorded, put everything back."""
        try:
            self._save("committed")
        except BaseException:
            self.rollback()
            raise
        crashpoint("journal_committed")
        finish(self.replacements, self.temps)
        remove_quietly(self.path)
        self.state = "done"

    def abandon(self) -> None:
        """Clean up after a run that ended before swap(): temps and journal go. A journal whose
        swap is not finished or undone is kept, for the next run to finish."""
        if self.state in ("new", "prepared"):
            remove_quietly(*map(Path, self.temps), self.path)

    def rollback(self) -> None:
        """After swap() in this same process: put every target back as it was. If that fails
        half-way, the journal stays and the next run finishes the swap instead."""
        try:
            for r in reversed(self.replacements):
                aside, target = Path(r.aside), Path(r.target)
                if aside.exists():
                    _put_back(aside, target)
                elif r.recorded is None and r.new and not Path(r.new).exists():
                    remove_quietly(target)
                fsync_path(target.parent)
        except OSError as exc:
            raise UpgradeFailed("The change could not be completed nor fully undone "
                                f"({exc}). Run wems-upgrade again: it will finish it.",
                                advice="Do not start Wareflow EMS before wems-upgrade has run again.") from exc
        remove_quietly(*map(Path, self.temps), self.path)
        self.state = "rolled_back"


def _put_back(aside: Path, target: Path) -> None:
    """Move `aside` back to `target` (if both are still links to one file, POSIX rename would do nothing)."""
    if target.exists() and os.path.samefile(aside, target):
        aside.unlink()
    else:
        os.replace(aside, target)


def _keep_aside(target: Path, aside: Path) -> None:
    """The old file also at `aside`: a hard link (instant, and `target` never goes missing), else a copy."""
    remove_quietly(aside)
    try:
        os.link(target, aside)
    except OSError:
        shutil.copy2(target, aside)
        fsync_path(aside)


def place(r: Replacement) -> None:
    """Move one new file in over its target, keeping the old one at `aside`."""
    target = Path(r.target)
    if target.exists():
        _keep_aside(target, Path(r.aside))
    if r.new:
        os.replace(r.new, target)
    else:
        remove_quietly(target)
    fsync_path(target.parent)


def _pending(r: Replacement) -> bool:
    return Path(r.new).exists() if r.new else Path(r.target).exists()


def finish(replacements: list[Replacement], temps: list[str]) -> None:
    """Delete the asides not kept and the temps; a file that cannot be deleted now is only logged."""
    leftovers = [Path(r.aside) for r in replacements if not r.keep_aside] + [Path(t) for t in temps]
    for path in leftovers:
        try:
            remove_quietly(path)
        except OSError as exc:
            logging.getLogger("wems_upgrade").warning("could not delete %s: %s", path, exc)


def _roll_forward(replacements: list[Replacement]) -> None:
    pending = [r for r in replacements if _pending(r)]
    changed = [r.target for r in pending if file_state(Path(r.target)) != r.recorded]
    if changed:
        raise UpgradeFailed("An interrupted upgrade cannot be finished: these files changed after it "
                            "stopped, so wems-upgrade leaves everything as it is:", changed,
                            advice="Put the installation back with wems-upgrade --restore <backup>, "
                                   "or send this message to support.")
    for r in pending:
        place(r)


def roll_back_hot_journal(db: Path) -> None:
    """Let SQLite roll back a transaction cut short on `db` (a hot -journal): only a read-write
    connection may, and until one does, read-only ones fail. The app would do the same on start."""
    if Path(f"{db}-journal").exists() and db.exists():
        conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READWRITE)
        try:
            conn.set_busy_timeout(2000)
            conn.execute("SELECT count(*) FROM sqlite_master").fetchall()
        except apsw.Error:
            pass
        finally:
            conn.close()


def recover(db: Path, *, discard_unfinishable: bool = False) -> str | None:
    """Finish an interrupted run; return what was done, in words, or None if there was none.

    A swap that had placed nothing yet is simply dropped (nothing was changed). With
    `discard_unfinishable` (a restore, which replaces every file anyway), a swap that can no
    longer be finished is dropped too, its files left as they are.
    """
    path = journal_path(db)
    remove_quietly(path.with_name(f"{path.name}.wems-upgrade-tmp"))
    roll_back_hot_journal(db)
    if not path.exists():
        return None
    body = json.loads(path.read_text(encoding="utf-8"))
    replacements = [Replacement(**r) for r in body["replacements"]]
    state = body["state"]
    if state == "swapping" and all(_pending(r) for r in replacements):
        state = "prepared"
    if state == "swapping":
        try:
            _roll_forward(replacements)
        except UpgradeFailed:
            if not discard_unfinishable:
                raise
            remove_quietly(*map(Path, body["temps"]), path)
            return "An interrupted upgrade that could no longer be finished was dropped."
        state = "committed"
        message = "An interrupted upgrade was finished: its new files had all been written before it stopped."
    else:
        message = ("An interrupted upgrade had already finished; its leftover files were removed."
                   if state == "committed" else
                   "An interrupted upgrade had changed nothing; its temporary files were removed.")
    if state == "committed":
        finish(replacements, body["temps"])
    remove_quietly(*map(Path, body["temps"]), path)
    return message
