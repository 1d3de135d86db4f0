"""The terminal: text that survives any console encoding, colour only where it belongs,
questions, progress bars, and the pause that keeps a double-clicked window open."""

from __future__ import annotations

import _thread
import io
import os
import re
import signal
import sys
import threading
import unicodedata
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Any, ClassVar, TextIO

from upgrader.errors import UsageError
from upgrader.i18n import N_, T, Text, _

if TYPE_CHECKING:
    from tqdm import tqdm

#: What a symbol becomes on a console that cannot show it (cp1252, cp437...).
ASCII = {
    "✔": "[ok]",
    "✘": "[FAILED]",
    "→": "->",
    "…": "...",
    "•": "-",
    "’": "'",  # noqa: RUF001 - a symbol this table replaces
    "—": "-",
    "·": "-",
    "⚠": "[!]",
    "\u00a0": " ",  # the no-break space of French typography (« Base de données : »)
    "«": '"',
    "»": '"',
}
COLORS = {"green": "\033[32m", "red": "\033[31m", "yellow": "\033[33m", "bold": "\033[1m"}
RESET = "\033[0m"
#: The first words of a line (English and French, with its no-break or plain space before the colon).
PAINT = [
    (re.compile(r"✔|\[ok\]"), "green"),
    (re.compile(r"✘|\[FAILED\]|^FAILED:|^ERROR:|^(?:ÉCHEC|ECHEC|ERREUR)[\u00a0 ]:"), "red"),
    (re.compile(r"^REFUSED:|⚠|\[!\]|^DRY RUN:|^(?:REFUSÉ|REFUSE|SIMULATION)[\u00a0 ]:"), "yellow"),
    (re.compile(r"^[A-ZÀ-Ý][A-Za-zÀ-ÖØ-öø-ÿ ]+$"), "bold"),
]


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
    if no_color or "NO_COLOR" in os.environ or not _isatty(stream):
        return False
    return not windows() or _enable_ansi(stream)


def _enable_ansi(stream: TextIO) -> bool:
    """Let a Windows 10+ console interpret ANSI colour codes (virtual terminal processing)."""
    if sys.platform != "win32":
        return True  # other terminals interpret ANSI codes as they are
    import ctypes
    import msvcrt

    enable_virtual_terminal_processing = 0x0004
    kernel32 = ctypes.windll.kernel32
    try:
        handle = msvcrt.get_osfhandle(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return True
    mode = ctypes.c_uint32()
    if not kernel32.GetConsoleMode(handle, ctypes.byref(mode)):
        return False
    return bool(kernel32.SetConsoleMode(handle, mode.value | enable_virtual_terminal_processing))


class Console:
    def __init__(
        self, out: TextIO | None = None, err: TextIO | None = None, *, no_color: bool = False, quiet: bool = False
    ):
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.quiet = quiet
        self.color = wants_color(self.out, no_color)

    def _fit(self, stream: TextIO, text: str) -> str:
        """The text as the console can show it: each character it cannot encode spelt out in ASCII
        (✔ -> [ok]); the accents it can show are kept (cp1252 shows é, à, ô)."""
        if _can_encode(stream, text):
            return text
        return "".join(char if char == "\n" or _can_encode(stream, char) else to_ascii(char) for char in text)

    def _paint(self, line: str) -> str:
        if not self.color:
            return line
        for pattern, color in PAINT:
            line = pattern.sub(COLORS[color] + r"\g<0>" + RESET, line)
        return line

    def _write(self, stream: TextIO, text: str) -> None:
        """A console already closed, or a pipe whose reader has gone, has no one left to read it."""
        text = self._fit(stream, text)
        try:
            stream.write("\n".join(self._paint(line) for line in text.split("\n")) + "\n")
            stream.flush()
        except (OSError, ValueError):
            pass

    def say(self, text: str) -> None:
        if not self.quiet:
            self._write(self.out, text)

    def warn(self, text: str) -> None:
        if not self.quiet:
            self._write(self.err, text)

    def json(self, text: str) -> None:
        """The --json object as UTF-8 bytes whatever the code page: never coloured, folded or dropped."""
        self.out.flush()
        buffer = getattr(self.out, "buffer", None)
        if buffer is None:
            self.out.write(text + "\n")
            self.out.flush()
            return
        buffer.write((text + "\n").encode("utf-8"))
        buffer.flush()

    @property
    def interactive(self) -> bool:
        return _isatty(sys.stdin)

    def ask(self, question: str | Text) -> str:
        """`question` in the user's language (a Text keeps its English for the log and --json)."""
        if not self.interactive:
            raise UsageError(
                T("{question} There is no keyboard to answer.", question=question),
                advice=T("Nothing was changed. Add --yes to answer yes when running without a keyboard."),
            )
        stream = self.err if self.quiet else self.out
        stream.write(self._fit(stream, str(question)) + " ")
        stream.flush()
        return sys.stdin.readline().strip()

    @property
    def window_would_vanish(self) -> bool:
        """A console window opened by a double-click, with a person at it: never a script, a pipe or --json."""
        return not self.quiet and self.interactive and _isatty(self.out) and started_by_double_click()

    def pause(self) -> None:
        """Keep a double-clicked window open until Enter (or Ctrl+C), so its last lines can be read."""
        if not self.window_would_vanish:
            return
        try:
            self.ask(_("Press Enter to close this window."))
        except (KeyboardInterrupt, EOFError, OSError, ValueError):
            pass

    def confirm(self, question: str | Text, assume_yes: bool) -> None:
        """Go on only on a yes (or --yes): y, yes, o, oui, in any language; anything else stops
        with nothing changed."""
        if assume_yes:
            return
        if self.ask(T("{question} [y/N]", question=question)).lower() not in ("y", "yes", "o", "oui"):
            raise UsageError(T("Stopped at your request."), advice=T("Nothing was changed."))

    def progress(self) -> ProgressBars | None:
        """A callback drawing one tqdm bar per stage on stderr; None when stderr is not a terminal."""
        if self.quiet or not _isatty(self.err):
            return None
        return ProgressBars(self.err)


#: The stages a progress bar is named after (upgrade._stage), as the bar shows them.
STAGES = {"copy": N_("copy"), "backup": N_("backup"), "checks": N_("checks"), "rows": N_("rows")}


def stage_label(stage: str) -> str:
    """A stage's name in the user's language: 'rebuild <table>' (executor.rows_progress) keeps its table."""
    if stage.startswith("rebuild "):
        return _("rebuild {table}").format(table=stage.removeprefix("rebuild "))
    return _(STAGES[stage]) if stage in STAGES else stage


class ProgressBars:
    """One tqdm bar per stage. A heartbeat redraws the open bar twice a second, so its clock
    moves even while SQLite runs one long step (a quick_check of a large file is one step)."""

    UNITS: ClassVar[dict[str, str]] = {"backup": "B", "copy": "B", "checks": "%"}

    def __init__(self, stream: TextIO):
        self.stream = stream
        self.stage: str | None = None
        self.bar: tqdm | None = None
        self.lock = threading.Lock()
        self.closed = threading.Event()
        threading.Thread(target=self._heartbeat, daemon=True).start()

    def __call__(self, stage: str, done: int, total: int) -> None:
        from tqdm import tqdm

        with self.lock:
            if stage != self.stage or self.bar is None:
                self._close()
                self.stage = stage
                unit = self.UNITS.get(stage, "rows")
                self.bar = tqdm(
                    total=total,
                    desc=stage_label(stage),
                    unit=_(unit) if unit == "rows" else unit,
                    file=self.stream,
                    leave=False,
                    mininterval=0.2,
                    ascii=not _can_encode(self.stream, "█"),
                )
            self.bar.update(max(0, done - self.bar.n))
            if done >= total:
                self._close()

    def _heartbeat(self) -> None:
        while not self.closed.wait(0.5):
            with self.lock:
                if self.bar is not None:
                    self.bar.refresh()

    def _close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        self.stage, self.bar = None, None

    def close(self) -> None:
        """Close the open bar and end the heartbeat."""
        self.closed.set()
        with self.lock:
            self._close()


def windows() -> bool:
    return os.name == "nt"


def _isatty(stream) -> bool:
    """A terminal a person reads. On Windows isatty() is also true for NUL (`> NUL`, services, Task
    Scheduler), so there the handle must be a real console: GetConsoleMode succeeds only on one."""
    try:
        if not (stream and stream.isatty()):
            return False
        return not windows() or is_console(stream)
    except (AttributeError, OSError, ValueError):
        return False


def is_console(stream) -> bool:
    """Windows: the stream's handle is a console (GetConsoleMode fails on NUL, files and pipes).
    A stream with no handle of its own (an IDE's, a wrapper) is taken at its word."""
    if sys.platform != "win32":
        return True  # elsewhere isatty() alone tells a terminal
    import ctypes
    import msvcrt

    try:
        handle = msvcrt.get_osfhandle(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return True
    mode = ctypes.c_uint32()
    return bool(ctypes.windll.kernel32.GetConsoleMode(handle, ctypes.byref(mode)))


def protect_streams() -> None:
    """Text that does not pass through Console (argparse's help, tqdm) never fails to encode."""
    for stream in (sys.stdout, sys.stderr):
        try:
            if isinstance(stream, io.TextIOWrapper):
                stream.reconfigure(errors="replace")
        except (AttributeError, OSError, ValueError):
            pass


def console_process_count() -> int | None:
    """How many processes share this console (Windows), or None when there is no way to tell."""
    if sys.platform != "win32":
        return None
    try:
        import ctypes

        processes = (ctypes.c_uint * 4)()
        return ctypes.windll.kernel32.GetConsoleProcessList(processes, 4)
    except (AttributeError, OSError, ImportError):
        return None


def _process_table() -> dict[int, tuple[int, str]]:
    """Every process (Windows): id -> (parent id, program file name)."""
    if sys.platform != "win32":
        raise OSError("the process table is read on Windows only")
    import ctypes
    from ctypes import wintypes

    class Entry(ctypes.Structure):
        _fields_ = [
            ("dwSize", wintypes.DWORD),
            ("cntUsage", wintypes.DWORD),
            ("th32ProcessID", wintypes.DWORD),
            ("th32DefaultHeapID", ctypes.c_size_t),
            ("th32ModuleID", wintypes.DWORD),
            ("cntThreads", wintypes.DWORD),
            ("th32ParentProcessID", wintypes.DWORD),
            ("pcPriClassBase", wintypes.LONG),
            ("dwFlags", wintypes.DWORD),
            ("szExeFile", wintypes.WCHAR * 260),
        ]

    kernel32 = ctypes.windll.kernel32
    kernel32.CreateToolhelp32Snapshot.restype = wintypes.HANDLE
    snapshot = kernel32.CreateToolhelp32Snapshot(0x2, 0)
    if not snapshot or snapshot == wintypes.HANDLE(-1).value:
        raise OSError("no process snapshot")
    entry = Entry()
    entry.dwSize = ctypes.sizeof(Entry)
    table = {}
    try:
        found = kernel32.Process32FirstW(snapshot, ctypes.byref(entry))
        while found:
            table[entry.th32ProcessID] = (entry.th32ParentProcessID, entry.szExeFile)
            found = kernel32.Process32NextW(snapshot, ctypes.byref(entry))
    finally:
        kernel32.CloseHandle(snapshot)
    return table


def launcher_name() -> str | None:
    """The program that started this one, past PyInstaller's bootloader (which bears our name); None if unknown."""
    try:
        table = _process_table()
    except (AttributeError, OSError, ImportError, ValueError):
        return None
    own_parent, own_name = table.get(os.getpid(), (None, ""))
    pid = own_parent
    for _hop in range(3):
        if pid not in table or table[pid][1].lower() != own_name.lower():
            break
        pid = table[pid][0]
    return table[pid][1] if pid in table else None


def started_by_double_click() -> bool:
    """True on Windows when Explorer started this program in a console window of its own (a
    double-click, or a folder dropped on it), so the window would vanish before the user can read
    the result. Task Scheduler and deployment tools also give a fresh console, but are not Explorer."""
    if not windows():
        return False
    count = console_process_count()
    if count is None or count > (2 if getattr(sys, "frozen", False) else 1):
        return False
    launcher = launcher_name()
    return launcher is None or launcher.lower() == "explorer.exe"


# --- stopping: Ctrl+C, Ctrl+Break, the window closing, a request to terminate ---------------------

STOP_SIGNALS = ("SIGINT", "SIGBREAK", "SIGTERM", "SIGHUP")
CTRL_CLOSE_EVENT, CTRL_LOGOFF_EVENT, CTRL_SHUTDOWN_EVENT = 2, 5, 6
#: Windows ends a process 5 s after its console window is closed.
CLOSE_GRACE_SECONDS = 4.5


class Interrupt(KeyboardInterrupt):
    """Raised in the main thread by a stop request, so the code running (a journaled swap too) cleans up."""

    def __init__(self, signum: int | None = None, closing: bool = False):
        super().__init__(signum)
        self.signum = signum
        self.closing = closing

    @property
    def how(self) -> str | Text:
        """What stopped the run, in words (a Text: the log and --json read it in English)."""
        if self.closing:
            return T("the window being closed")
        names: dict[str, str | Text] = {
            "SIGBREAK": "Ctrl+Break",
            "SIGTERM": T("a request to stop"),
            "SIGHUP": T("the terminal being closed"),
        }
        return next(
            (
                text
                for name, text in names.items()
                if self.signum is not None and getattr(signal, name, None) == self.signum
            ),
            "Ctrl+C",
        )

    @property
    def at_keyboard(self) -> bool:
        """Ctrl+C: the person is still there to read what happened."""
        return not self.closing and self.signum in (None, signal.SIGINT)


def how_stopped(exc: BaseException) -> str | Text:
    return exc.how if isinstance(exc, Interrupt) else "Ctrl+C"


class StopRequests:
    """While active, the first stop request raises Interrupt in the main thread; later ones are
    ignored, so the clean-up the first one started (undoing a swap) is not itself cut short."""

    active: StopRequests | None = None

    def __init__(self):
        self.previous: dict[int, Callable[[int, FrameType | None], Any] | int | None] = {}
        self.stopping = False
        self.closing = False
        self.finished = threading.Event()

    def __enter__(self) -> StopRequests:
        for name in STOP_SIGNALS:
            number = getattr(signal, name, None)
            if number is None:
                continue
            try:
                self.previous[number] = signal.signal(number, self._on_signal)
            except (ValueError, OSError):
                pass
        StopRequests.active = self
        _watch_console_close()
        return self

    def __exit__(self, *exc) -> None:
        for number, handler in self.previous.items():
            signal.signal(number, handler)
        StopRequests.active = None
        self.finished.set()

    def ignore(self) -> None:
        """From here on, finishing is quicker than stopping."""
        self.stopping = True

    def _on_signal(self, signum: int, _frame) -> None:
        if self.stopping:
            return
        self.stopping = True
        raise Interrupt(signum, closing=self.closing)


def on_console_event(event: int) -> bool:
    """Windows calls this in a thread of its own; returning from a close event ends the process,
    so it first asks the main thread to stop and waits for it to finish cleanly."""
    requests = StopRequests.active
    if event not in (CTRL_CLOSE_EVENT, CTRL_LOGOFF_EVENT, CTRL_SHUTDOWN_EVENT) or requests is None:
        return False
    requests.closing = True
    _thread.interrupt_main(getattr(signal, "SIGBREAK", signal.SIGINT))
    requests.finished.wait(CLOSE_GRACE_SECONDS)
    return True


_console_handler = None


def _watch_console_close() -> None:
    """Windows only: the C runtime ends the process on a close event without running Python's handlers."""
    global _console_handler
    if sys.platform != "win32" or _console_handler is not None:
        return
    try:
        import ctypes
        from ctypes import wintypes

        handler_type = ctypes.WINFUNCTYPE(wintypes.BOOL, wintypes.DWORD)
        _console_handler = handler_type(on_console_event)
        ctypes.windll.kernel32.SetConsoleCtrlHandler(_console_handler, True)
    except (AttributeError, OSError, ImportError):
        _console_handler = None
