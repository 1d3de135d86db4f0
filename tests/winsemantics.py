"""Windows file semantics on any system, for tests: held files, our own open SQLite files, no hard links.

On Windows a file another program holds open cannot be renamed (from or onto) nor deleted:
PermissionError with winerror 32. Neither can a file one of our own apsw connections has
open. Reading and linking it still work. On FAT32/exFAT sticks os.link fails.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable

import apsw
import pytest

from upgrader import winfs

REAL = {"replace": os.replace, "rename": os.rename, "unlink": os.unlink, "link": os.link, "copy2": shutil.copy2}


def sharing_violation(path) -> PermissionError:
    """The error Windows Python raises for a file another process has open."""
    exc = PermissionError(
        13, "The process cannot access the file because it is being used by another process", str(path)
    )
    exc.winerror = 32
    return exc


def _key(path) -> str:
    return os.path.realpath(os.fspath(path))


class WindowsFiles:
    """Held paths (failing N times, or until released), triggers, and a record of every call."""

    def __init__(self) -> None:
        self.held: dict[str, int | None] = {}
        self.triggers: list[tuple[str, str, Callable[[], None]]] = []
        self.no_links = False
        self.calls: list[tuple[str, str, bool]] = []

    def hold(self, path, times: int | None = None) -> None:
        """`path` cannot be renamed or deleted: `times` attempts fail, or all until release()."""
        self.held[_key(path)] = times

    def release(self) -> None:
        self.held.clear()

    def when(self, operation: str, path, action: Callable[[], None]) -> None:
        """Run `action` once, just before the first `operation` ("replace", "unlink", "copy2", ...) on `path`."""
        self.triggers.append((operation, _key(path), action))

    def attempts(self, operation: str, path) -> int:
        return sum(1 for op, p, _open in self.calls if op == operation and p == _key(path))

    def _fire(self, operation: str, key: str) -> None:
        for trigger in [t for t in self.triggers if t[:2] == (operation, key)]:
            self.triggers.remove(trigger)
            trigger[2]()

    def _refuse_if_held(self, path) -> None:
        key = _key(path)
        if key in _open_by_us():
            raise sharing_violation(path)
        if key in self.held:
            left = self.held[key]
            if left is not None:
                self.held[key] = left - 1
                if left - 1 <= 0:
                    del self.held[key]
            raise sharing_violation(path)

    def _moving(self, name: str):
        def operation(src, dst, *args, **kwargs):
            self._record(name, dst)
            self._refuse_if_held(src)
            self._refuse_if_held(dst)
            return REAL[name](src, dst, *args, **kwargs)

        return operation

    def _unlink(self, path, *args, **kwargs):
        self._record("unlink", path)
        self._refuse_if_held(path)
        return REAL["unlink"](path, *args, **kwargs)

    def _link(self, src, dst, *args, **kwargs):
        self._record("link", dst)
        if self.no_links:
            exc = OSError(22, "Incorrect function", str(dst))
            exc.winerror = 1
            raise exc
        return REAL["link"](src, dst, *args, **kwargs)

    def _copy2(self, src, dst, *args, **kwargs):
        self._record("copy2", src)
        return REAL["copy2"](src, dst, *args, **kwargs)

    def _record(self, operation: str, path) -> None:
        key = _key(path)
        self.calls.append((operation, key, key in _open_by_us()))
        self._fire(operation, key)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(os, "replace", self._moving("replace"))
        monkeypatch.setattr(os, "rename", self._moving("rename"))
        monkeypatch.setattr(os, "unlink", self._unlink)
        monkeypatch.setattr(os, "remove", self._unlink)
        monkeypatch.setattr(os, "link", self._link)
        monkeypatch.setattr(shutil, "copy2", self._copy2)
        monkeypatch.setattr(winfs, "OPEN_FILES_BLOCK_RENAME", True)
        monkeypatch.setattr(winfs, "DELAY", 0.001)


def _open_by_us() -> set[str]:
    """The files our own apsw connections have open (Windows would refuse to rename them)."""
    return {_key(c.filename) for c in apsw.connections() if c.filename}
