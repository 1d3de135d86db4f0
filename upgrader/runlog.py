"""The log file of every run: what support needs (versions, plan, steps, checks, timings,
errors with their trace) and no personal data from table rows."""

from __future__ import annotations

import logging
import platform
import sys
import tempfile
from datetime import datetime
from pathlib import Path

import apsw

from upgrader import __version__

#: Every module logs to logging.getLogger(__name__), a child of this one, which holds the file.
LOGGER = "upgrader"
log = logging.getLogger(LOGGER)


class _LogHandler(logging.FileHandler):
    """A log file whose failures (a full disk) never change a run's outcome: it stops writing."""

    failed = False

    def emit(self, record: logging.LogRecord) -> None:
        if not self.failed:
            super().emit(record)

    def handleError(self, record: logging.LogRecord) -> None:
        self.failed = True

    def flush(self) -> None:
        try:
            super().flush()
        except OSError:
            self.failed = True

    def close(self) -> None:
        try:
            super().close()
        except OSError:
            self.failed = True


def _open_handler(folders: list[Path], name: str) -> logging.FileHandler | None:
    for folder in folders:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            return _LogHandler(folder / name, encoding="utf-8", delay=False)
        except OSError:
            continue
    return None


def start(installation_root: Path | None, writes_installation: bool) -> Path | None:
    """Log to <installation>/logs/ when the run may change the installation, else to the temp folder."""
    name = f"wems-upgrade-{datetime.now():%Y%m%d-%H%M%S-%f}.log"
    fallback = Path(tempfile.gettempdir()) / "wems-upgrade-logs"
    folders = ([installation_root / "logs"] if installation_root and writes_installation else []) + [fallback]
    handler = _open_handler(folders, name)
    if handler is None:
        return None
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.info(
        "wems-upgrade %s, Python %s, SQLite %s, %s, arguments %s",
        __version__,
        platform.python_version(),
        apsw.sqlite_lib_version(),
        platform.platform(),
        sys.argv[1:],
    )
    return Path(handler.baseFilename)


def stop() -> None:
    for handler in list(log.handlers):
        handler.close()
        log.removeHandler(handler)
