"""File operations that wait out Windows sharing violations, as SQLite's os_win.c does.

On Windows a file another program holds open (the app, an antivirus, an indexer, OneDrive)
cannot be renamed over or deleted, and the error is usually gone a moment later. Every
rename, delete, link and copy of the swap, its undo, recovery and clean-up goes through
`retrying`: up to RETRIES more tries, waiting DELAY * (n + 1) seconds before try n + 1,
then the original error.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable
from typing import TypeVar

#: winerror of a file held by another process: ERROR_ACCESS_DENIED, ERROR_SHARING_VIOLATION, ERROR_LOCK_VIOLATION.
SHARING_ERRORS = (5, 32, 33)
RETRIES = 10
DELAY = 0.025
#: Windows refuses to rename or delete a file that any connection, ours included, has open.
OPEN_FILES_BLOCK_RENAME = os.name == "nt"

T = TypeVar("T")
log = logging.getLogger(__name__)


def is_sharing_violation(exc: BaseException) -> bool:
    return getattr(exc, "winerror", None) in SHARING_ERRORS


def retrying(action: Callable[..., T], *args) -> T:
    """`action(*args)`, tried again while it fails because another program holds the file."""
    for attempt in range(RETRIES + 1):
        try:
            return action(*args)
        except OSError as exc:
            if attempt == RETRIES or not is_sharing_violation(exc):
                raise
            log.info("%s: %s; trying again (%d)", getattr(action, "__name__", action), exc, attempt + 1)
            time.sleep(DELAY * (attempt + 1))
    raise AssertionError("unreachable")


def replace(source, target) -> None:
    retrying(os.replace, source, target)


def unlink(path) -> None:
    """Delete `path`; a missing file is no error."""
    try:
        retrying(os.unlink, path)
    except FileNotFoundError:
        pass


def link(source, target) -> None:
    retrying(os.link, source, target)


def copy(source, target) -> None:
    """A copy with metadata (shutil.copy2): where a hard link is impossible."""
    retrying(shutil.copy2, source, target)
