"""The terminal: text that survives any console encoding, colour only where it belongs,
questions, progress bars, and the pause that keeps a double-clicked window open."""

from __future__ import annotations

import os
import re
import sys
import threading
import time
import unicodedata
from typing import Callable, TextIO

from upgrader.errors import UsageError

#: What a symbol becomes on a console that cannot show it (cp1252, cp437...).
ASCII = {"✔": "[ok]", "✘": "[FAILED]", "→": "->", "…": "...", "•": "-", "’": "'", "—": "-", "·": "-",
         "⚠": "[!]"}
COLORS = {"green": "\033[32m", "red": "\033[31m", "yellow": "\033[33m", "bold": "\033[1m"}
RESET = "\033[0m"
PAINT = [(re.compile(r"✔|\[ok\]"), "green"), (re.compile(r"✘|\[FAILED\]|^FAILED:|^ERROR:"), "red"),
         (re.compile(r"^REFUSED:|⚠|\[!\]|^DRY RUN:"), "yellow"), (re.compile(r"^[A-Z][A-Za-z ]+$"), "bold")]


def _can_encode(stream: TextIO, text: str) -> bool:
    try:
        text.encode(getattr(stream, "encoding", None) or "ascii")
        return True
    except (UnicodeEncodeError, LookupError):
        return False


def to_ascii(text: str) -> str:
    """Plain ASCII: known symbols spelt out, accents dropped (é -> e), anything else '?'."""
    out = []
    for char in text:
        if ord(char) < 128:
            out.append(char)
        elif char in ASCII:
            out.append(ASCII[char])
        else:
            folded = unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode()
            out.append(folded or "?")
    return "".join(out)


def wants_color(stream: TextIO, no_color: bool) -> bool:
    if no_color or "NO_COLOR" in os.environ or not hasattr(stream, "isatty") or not stream.isatty():
        return False
    if os.name == "nt":
        os.system("")  # lets Windows 10+ consoles interpret ANSI colour codes
    return True


class Console:
    def __init__(self, out: TextIO | None = None, err: TextIO | None = None, *, no_color: bool = False,
                 quiet: bool = False):
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.quiet = quiet
        self.color = wants_color(self.out, no_color)

    def _fit(self, stream: TextIO, text: str) -> str:
        return text if _can_encode(stream, text) else "\n".join(
            line if _can_encode(stream, line) else to_ascii(line) for line in text.split("\n"))

    def _paint(self, line: str) -> str:
        if not self.color:
            return line
        for pattern, color in PAINT:
            line = pattern.sub(lambda m: f"{COLORS[color]}{m.group(0)}{RESET}", line)
        return line

    def _write(self, stream: TextIO, text: str) -> None:
        text = self._fit(stream, text)
        stream.write("\n".join(self._paint(line) for line in text.split("\n")) + "\n")
        stream.flush()

    def say(self, text: str) -> None:
        if not self.quiet:
            self._write(self.out, text)

    def warn(self, text: str) -> None:
        if not self.quiet:
            self._write(self.err, text)

    def raw(self, text: str) -> None:
        """Machine-readable output (--json): never coloured, never dropped."""
        self.out.write(self._fit(self.out, text) + "\n")
        self.out.flush()

    @property
    def interactive(self) -> bool:
        return bool(sys.stdin) and sys.stdin.isatty()

    def ask(self, question: str) -> str:
        if not self.interactive:
            raise UsageError(f"{question} There is no keyboard to answer.",
                             advice="Nothing was changed. Add --yes to answer yes when running without a keyboard.")
        self.out.write(self._fit(self.out, question) + " ")
        self.out.flush()
        return sys.stdin.readline().strip()

    def confirm(self, question: str, assume_yes: bool) -> None:
        """Go on only on a yes (or --yes); anything else stops with nothing changed."""
        if assume_yes:
            return
        if self.ask(f"{question} [y/N]").lower() not in ("y", "yes", "o", "oui"):
            raise UsageError("Stopped at your request.", advice="Nothing was changed.")

    def progress(self) -> Callable[[str, int, int], None] | None:
        """A callback drawing one tqdm bar per stage on stderr; None when stderr is not a terminal."""
        if self.quiet or not hasattr(self.err, "isatty") or not self.err.isatty():
            return None
        return ProgressBars(self.err)


class ProgressBars:
    """One tqdm bar per stage. A heartbeat redraws the open bar twice a second, so its clock
    moves even while SQLite runs one long step (a quick_check of a large file is one step)."""

    UNITS = {"backup": "pages", "copy": "B", "checks": "%"}

    def __init__(self, stream: TextIO):
        self.stream = stream
        self.stage, self.bar = None, None
        self.lock = threading.Lock()
        threading.Thread(target=self._heartbeat, daemon=True).start()

    def __call__(self, stage: str, done: int, total: int) -> None:
        from tqdm import tqdm

        with self.lock:
            if stage != self.stage:
                self._close()
                self.stage = stage
                unit = self.UNITS.get(stage, "rows")
                self.bar = tqdm(total=total, desc=stage, unit=unit, file=self.stream, leave=False,
                                mininterval=0.2, ascii=not _can_encode(self.stream, "█"))
            self.bar.update(max(0, done - self.bar.n))
            if done >= total:
                self._close()

    def _heartbeat(self) -> None:
        while True:
            time.sleep(0.5)
            with self.lock:
                if self.bar is not None:
                    self.bar.refresh()

    def _close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        self.stage, self.bar = None, None

    def close(self) -> None:
        with self.lock:
            self._close()


def started_by_double_click() -> bool:
    """True on Windows when this program owns its console window (started from Explorer),
    so the window would vanish before the user can read the result."""
    if os.name != "nt":
        return False
    try:
        import ctypes
        processes = (ctypes.c_uint * 4)()
        count = ctypes.windll.kernel32.GetConsoleProcessList(processes, 4)
    except (AttributeError, OSError):
        return False
    return count <= (2 if getattr(sys, "frozen", False) else 1)
