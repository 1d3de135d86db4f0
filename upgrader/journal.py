"""Replaces a set of installation files all or nothing, and finishes an interrupted set.

The journal is a small JSON file beside the database, written by temp file + fsync + rename.
States:
- "prepared": new files are being written as temps; no target has been touched (an aside
  made early, while the database is still held, is only a copy of it).
- "swapping": every temp is complete and fsynced; each target is hard-linked (else copied,
  through a temp) to its `aside` name, then the temp is renamed over it, so the target path
  never goes missing; a file that goes away is renamed to its aside.
- "committed": every target is in place; the asides are being deleted.

Each replacement is, on disk, pending (its temp is still there, or the file to remove),
placed, or undone (put back). An error inside this process during "swapping" undoes every
placed one. After a crash, or an undo that failed half-way, the next run decides from the
files themselves, so the result is always one consistent set, never a mix: nothing placed
-> drop; nothing undone and the pending targets unchanged since the journal was written ->
finish (place the rest); else undo every placed one, if none changed since it was placed.
Anything else stops with a message, changing nothing more. The temps are never deleted
while the journal says "swapping". Every rename, delete, link and copy waits out another
program holding the file (upgrader.winfs).
"""

from __future__ import annotations

import json
import logging
import os
import signal
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import apsw

from upgrader.errors import DatabaseInUse, Unfinished, UpgradeFailed
from upgrader.i18n import N_, T
from upgrader.snapshot import fsync_path, remove_quietly
from upgrader.winfs import copy, is_sharing_violation, link, replace, retrying, unlink

CRASH_ENV = "WEMS_UPGRADE_CRASH_AT"
PARTIAL = ".wems-upgrade-partial"
INCOMPLETE_MARKER = ".wems-upgrade-incomplete"
PENDING, PLACED, UNDONE = "pending", "placed", "undone"
log = logging.getLogger(__name__)


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
        replace(temp, path)
    except BaseException:
        remove_logged(temp)
        raise
    fsync_path(path.parent)


def remove_logged(*paths: str | os.PathLike[str]) -> None:
    """Delete what can be deleted; a file that cannot be deleted now is only logged, never raised."""
    for path in paths:
        try:
            remove_quietly(Path(path))
        except OSError as exc:
            log.warning("could not delete %s: %s", path, exc)


def file_state(path: Path) -> list | None:
    """Size and modification time of `path` (None if absent): what tells that someone changed it."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return [st.st_size, st.st_mtime_ns]


@dataclass
class Replacement:
    """`target` gets the content of `new` (None: target goes away); the old file waits at `aside`.

    `recorded` and `new_recorded`: the states of target and new file when the swap began.
    """

    target: str
    new: str | None
    aside: str
    keep_aside: bool = False
    recorded: list | None = None
    new_recorded: list | None = None


def journal_path(db: Path) -> Path:
    return db.with_name(f"{db.name}.wems-upgrade-journal")


class FileSwap:
    """One all-or-nothing replacement of files: prepare(), swap(), then complete()."""

    def __init__(self, db: Path, replacements: list[Replacement], temps: Iterable[Path] = ()):
        self.path = journal_path(db)
        self.replacements = replacements
        self.temps = [str(t) for t in temps]
        self.state = "new"
        self.asides_ready: set[str] = set()

    @property
    def unfinished(self) -> bool:
        """The journal says files may be half swapped: its temps belong to the next run."""
        return self.state == "swapping"

    def _save(self, state: str) -> None:
        body = {"state": state, "replacements": [asdict(r) for r in self.replacements], "temps": self.temps}
        write_atomically(self.path, json.dumps(body, indent=1).encode("utf-8"))
        self.state = state

    def prepare(self) -> None:
        self._save("prepared")

    def set_aside(self, target: Path) -> None:
        """Make `target`'s aside now, while its owner still holds it; swap() then only renames."""
        r = next(r for r in self.replacements if r.target == str(target))
        _keep_aside(target, Path(r.aside))
        self.asides_ready.add(r.target)

    def swap(self, ready: Callable[[], None] | None = None) -> None:
        """Put every new file in place; on any error put everything back.

        `ready` runs once the journal says "swapping", before the first rename (it may refuse), and
        again before every further try to rename over a target whose aside was made while it was
        held: a program that had it open, and so made the rename fail, may have written it since.
        """
        for r in self.replacements:
            r.recorded = file_state(Path(r.target))
            r.new_recorded = file_state(Path(r.new)) if r.new else None
        self._save("swapping")
        crashpoint("journal_swapping")
        try:
            if ready:
                ready()
            for index, r in enumerate(self.replacements):
                held = r.target in self.asides_ready
                place(r, aside_ready=held, check=ready if held else None)
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
        remove_logged(self.path)
        self.state = "done"

    def abandon(self) -> None:
        """Clean up after a run that ended before swap(): temps, early asides and journal go. A
        journal whose swap is not finished or undone is kept, for the next run to decide."""
        if self.state in ("new", "prepared"):
            _drop(self.replacements, self.temps)
            remove_logged(self.path)

    def rollback(self) -> None:
        """After swap() in this same process: put every target back as it was. If that fails
        half-way, the journal and the temps stay and the next run finishes or undoes the swap."""
        try:
            undo(self.replacements)
        except OSError as exc:
            raise self._undo_failed(exc) from exc
        remove_logged(*self.temps, self.path)
        self.state = "rolled_back"

    def _undo_failed(self, exc: OSError) -> UpgradeFailed | Unfinished:
        """The true state after an undo that stopped half-way: still all old (leftovers only), or a mix."""
        if not any(status(r) == PLACED for r in self.replacements):
            return UpgradeFailed(
                T(
                    "The upgrade was undone, but some of its temporary files could not be removed yet ({reason}).",
                    reason=exc,
                ),
                advice=T("Your installation is as it was. The next run of wems-upgrade removes the leftovers."),
            )
        return Unfinished(
            T(
                "The files could be neither all replaced nor all put back ({reason}): some are new, some old.",
                reason=exc,
            )
        )


def status(r: Replacement) -> str:
    """Where one replacement is on disk: PENDING, PLACED or UNDONE (put back)."""
    target, aside = Path(r.target), Path(r.aside)
    if r.new is None:
        return PLACED if r.recorded is not None and not target.exists() and aside.exists() else PENDING
    if Path(r.new).exists():
        return PENDING
    placed = aside.exists() if r.recorded is not None else target.exists()
    return PLACED if placed else UNDONE


def _put_back(aside: Path, target: Path) -> None:
    """Move `aside` back to `target` (if both are still links to one file, POSIX rename would do nothing)."""
    if target.exists() and os.path.samefile(aside, target):
        unlink(aside)
    else:
        replace(aside, target)


def _our_aside(r: Replacement) -> bool:
    """An aside of a pending replacement that this swap made (not one kept from an earlier upgrade)."""
    aside, target = Path(r.aside), Path(r.target)
    if not aside.exists():
        return False
    return not r.keep_aside or (target.exists() and os.path.samefile(aside, target))


def _undo_one(r: Replacement) -> None:
    state, target = status(r), Path(r.target)
    if state == PLACED and r.new and r.recorded is None:
        unlink(target)
    elif state == PLACED:
        _put_back(Path(r.aside), target)
    elif state == PENDING and _our_aside(r):
        unlink(Path(r.aside))
    fsync_path(target.parent)


def undo(replacements: list[Replacement]) -> None:
    """Put back every placed replacement, last first, and delete the asides made for pending ones."""
    for r in reversed(replacements):
        _undo_one(r)
    remove_logged(*(f"{r.aside}{PARTIAL}" for r in replacements))


def _keep_aside(target: Path, aside: Path) -> None:
    """The old file also at `aside`: a hard link (instant, and `target` never goes missing), else a copy."""
    remove_quietly(aside)
    try:
        link(target, aside)
    except OSError as exc:
        log.info("no hard link for %s (%s): copying it", target, exc)
        _copy_aside(target, aside)


def _copy_aside(target: Path, aside: Path) -> None:
    """A complete copy at `aside`, or none: copied to a temp, fsynced, then renamed."""
    partial = aside.with_name(aside.name + PARTIAL)
    try:
        copy(target, partial)
        fsync_path(partial)
        replace(partial, aside)
    except BaseException:
        remove_logged(partial)
        raise


def place(r: Replacement, aside_ready: bool = False, check: Callable[[], None] | None = None) -> None:
    """Move one new file in over its target, keeping the old one at `aside`; `check` runs before
    every try of the rename."""
    target = Path(r.target)
    if r.new is None:
        if target.exists():
            replace(target, r.aside)
    else:
        if target.exists() and not aside_ready:
            _keep_aside(target, Path(r.aside))
        retrying(_checked_replace, check, r.new, target)
    fsync_path(target.parent)


def _checked_replace(check: Callable[[], None] | None, source, target) -> None:
    if check:
        check()
    os.replace(source, target)


def finish(replacements: list[Replacement], temps: list[str]) -> None:
    """Delete the asides not kept and the temps; a file that cannot be deleted now is only logged."""
    remove_logged(*[r.aside for r in replacements if not r.keep_aside], *temps)


def _drop(replacements: list[Replacement], temps: list[str]) -> None:
    """Nothing was placed: delete the temps and the asides made early (never one kept from before)."""
    remove_logged(*temps, *(f"{r.aside}{PARTIAL}" for r in replacements))
    remove_logged(*(r.aside for r in replacements if _our_aside(r)))


def _can_finish(replacements: list[Replacement]) -> bool:
    """Nothing was put back yet, and every target still to replace is as the journal recorded it."""
    states = [status(r) for r in replacements]
    return UNDONE not in states and all(
        file_state(Path(r.target)) == r.recorded for r, s in zip(replacements, states, strict=True) if s == PENDING
    )


def _can_undo(replacements: list[Replacement]) -> bool:
    """Every placed new file is still as it was written (nobody used it since, not even in a `-wal`
    that putting the old file back would leave beside it)."""
    return all(
        file_state(Path(r.target)) == r.new_recorded and not _has_wal(r.target)
        for r in replacements
        if r.new and r.new_recorded is not None and status(r) == PLACED
    )


def _has_wal(target: str) -> bool:
    wal = Path(f"{target}-wal")
    return wal.is_file() and wal.stat().st_size > 0


def _changed_files(replacements: list[Replacement]) -> list[str]:
    return [
        r.target
        for r in replacements
        if status(r) != UNDONE
        and (_has_wal(r.target) or file_state(Path(r.target)) not in (r.recorded, r.new_recorded))
    ]


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


#: What recover() settled, in words: English (the log, tests), shown translated with i18n.localize().
FINISHED = N_("An interrupted upgrade was finished: its new files had all been written before it stopped.")
UNDONE_MESSAGE = N_("An interrupted upgrade was undone: its files were put back as they were before it.")
NOTHING = N_("An interrupted upgrade had changed nothing; its temporary files were removed.")
COMMITTED = N_("An interrupted upgrade had already finished; its leftover files were removed.")
DROPPED = N_("An interrupted upgrade that could no longer be finished was dropped.")


class Unfinishable(Unfinished):
    """Files changed since the interrupted swap: neither finishing nor undoing it is safe."""


def _settle(replacements: list[Replacement], temps: list[str]) -> str:
    """Finish or undo an interrupted swap, whichever gives one consistent set (see the module doc)."""
    if all(status(r) == PENDING for r in replacements):
        _drop(replacements, temps)
        return NOTHING
    if _can_finish(replacements):
        try:
            for r in replacements:
                if status(r) == PENDING:
                    place(r)
            finish(replacements, temps)
            return FINISHED
        except OSError as exc:
            log.warning("finishing the interrupted upgrade failed (%s): undoing it", exc)
    if not _can_undo(replacements):
        raise Unfinishable(
            T(
                "An interrupted upgrade cannot be finished: these files changed after it "
                "stopped, so wems-upgrade leaves everything as it is:"
            ),
            _changed_files(replacements),
            advice=T(
                "Put the installation back with wems-upgrade --restore <backup>, or send this message to support."
            ),
        )
    undo(replacements)
    remove_logged(*temps)
    return UNDONE_MESSAGE


def _recover_state(state: str, replacements: list[Replacement], temps: list[str]) -> str:
    if state == "committed":
        finish(replacements, temps)
        return COMMITTED
    if state == "prepared":
        _drop(replacements, temps)
        return NOTHING
    return _settle(replacements, temps)


def recover(db: Path, *, discard_unfinishable: bool = False) -> str | None:
    """Finish or undo an interrupted run; return what was done, in words, or None if there was none.

    With `discard_unfinishable` (a restore, which replaces every file anyway), a swap that can no
    longer be finished nor undone is dropped, its files left as they are.
    """
    path = journal_path(db)
    remove_logged(path.with_name(f"{path.name}.wems-upgrade-tmp"))
    roll_back_hot_journal(db)
    if not path.exists():
        return None
    body = json.loads(path.read_text(encoding="utf-8"))
    replacements = [Replacement(**r) for r in body["replacements"]]
    try:
        message = _recover_state(body["state"], replacements, body["temps"])
    except Unfinishable:
        if not discard_unfinishable:
            raise
        _keep_for_good(replacements)
        message = DROPPED
    except OSError as exc:
        raise _stuck(exc) from exc
    remove_logged(*body["temps"], path)
    return message


def _keep_for_good(replacements: list[Replacement]) -> None:
    """A dropped swap's kept asides may be the only copy of what they replaced: unmark the backup
    folder holding one, so that it is never removed as an interrupted backup."""
    for r in replacements:
        marker = Path(r.aside).with_name(INCOMPLETE_MARKER)
        if r.keep_aside and Path(r.aside).exists() and marker.exists():
            remove_logged(marker)
            log.warning("kept %s: it may be the only copy of %s", r.aside, r.target)


def _stuck(exc: OSError) -> DatabaseInUse | Unfinished:
    """The error of a recovery that could not move a file: the journal stays for the next run."""
    if isinstance(exc, PermissionError) or is_sharing_violation(exc):
        return DatabaseInUse(
            T(
                "An interrupted upgrade could not be finished nor undone yet ({reason}). "
                "Another program has the file open.",
                reason=exc,
            ),
            advice=T(
                "Close Wareflow EMS (and any program showing these files) on every "
                "computer, then run wems-upgrade again; do not start Wareflow EMS before."
            ),
        )
    return Unfinished(
        T("An interrupted upgrade could not be finished nor undone yet ({reason}).", reason=exc),
        advice=T("Nothing more was changed. Run wems-upgrade again; do not start Wareflow EMS before."),
    )
