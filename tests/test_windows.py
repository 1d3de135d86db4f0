"""How wems-upgrade behaves in a Windows console, checked on any OS through a small layer that
answers as Windows would: who owns the console window and who started us (the probes of
upgrader.console), which streams are the console (isatty), and what code page a pipe carries.

Also: Ctrl+C, Ctrl+Break, a closed window and termination requests at every stage of an upgrade,
sent as real signals to this process."""

from __future__ import annotations

import io
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest
from support import content, query

from upgrader import cli, console, errors, journal, upgrade
from upgrader.cli import main
from upgrader.installation import locate


class Stream(io.BytesIO):
    """The bytes behind a standard stream: the console itself (a tty), or a pipe or file; or NUL,
    a character device for which Windows' isatty() is true although no person is there."""

    def __init__(self, data: bytes = b"", tty: bool = False, nul: bool = False):
        super().__init__(data)
        self.tty = tty or nul
        self.nul = nul

    def isatty(self) -> bool:
        return self.tty


class WindowsConsole:
    """Windows as wems-upgrade sees it. By default: a window opened by a double-click in
    Explorer (this program alone in a fresh console), a keyboard, stdout and stderr on the screen."""

    def __init__(self, monkeypatch):
        self.monkeypatch = monkeypatch
        self.processes = 1
        self.launcher = "explorer.exe"
        monkeypatch.setenv("NO_COLOR", "1")
        monkeypatch.setattr(console, "windows", lambda: True)
        monkeypatch.setattr(console, "console_process_count", lambda: self.processes)
        monkeypatch.setattr(console, "launcher_name", lambda: self.launcher)
        monkeypatch.setattr(console, "is_console", lambda stream: not getattr(stream.buffer, "nul", False))
        monkeypatch.setattr(console, "_enable_ansi", lambda stream: True)
        self.keyboard("\n")
        self.screen()

    def keyboard(self, typed: str = "\n", tty: bool = True, nul: bool = False) -> None:
        self.stdin = io.TextIOWrapper(Stream(typed.encode(), tty, nul), encoding="utf-8")

    def screen(self, encoding: str = "utf-8", out_tty: bool = True, err_tty: bool = True, nul: bool = False) -> None:
        """stdout and stderr: the console, or redirected (`> file`, a pipe, NUL) with the ANSI code page."""
        self.encoding = encoding
        self.out, self.err = Stream(tty=out_tty, nul=nul), Stream(tty=err_tty, nul=nul)
        self.stdout = io.TextIOWrapper(self.out, encoding=encoding, newline="\n")
        self.stderr = io.TextIOWrapper(self.err, encoding=encoding, newline="\n")

    def attach(self) -> None:
        """Make these the process's standard streams (in the test itself: pytest resets them between phases)."""
        for name in ("stdin", "stdout", "stderr"):
            self.monkeypatch.setattr(sys, name, getattr(self, name))

    def run(self, *args) -> int:
        self.attach()
        code = main([str(a) for a in args])
        sys.stdout.flush()
        sys.stderr.flush()
        return code

    @property
    def stdout_bytes(self) -> bytes:
        return self.out.getvalue()

    @property
    def text(self) -> str:
        return (self.out.getvalue() + self.err.getvalue()).decode(self.encoding, "replace")

    @property
    def paused(self) -> bool:
        return "Press Enter to close this window." in self.text

    @property
    def unread_keys(self) -> str:
        return self.stdin.read()


@pytest.fixture
def windows(monkeypatch):
    return WindowsConsole(monkeypatch)


@pytest.fixture
def up_to_date(install, windows):
    """An installation with nothing left to do: no question is asked."""
    root = install(8)
    assert main(["--yes", "--json", "--data-dir", str(root)]) == errors.EXIT_OK
    windows.screen()
    windows.keyboard()
    return root


# --- the pause before a double-clicked window closes ----------------------------------------------


def test_a_double_clicked_window_waits_for_enter(up_to_date, windows):
    root = up_to_date
    assert windows.run(root) == errors.EXIT_OK
    assert "Nothing to do" in windows.text and windows.paused
    assert windows.unread_keys == ""


@pytest.mark.parametrize("flags", [["--yes"], ["-y"], ["--json"], ["--json", "--yes"], ["--version"]])
def test_never_a_pause_with_yes_json_or_version(up_to_date, windows, flags):
    root = up_to_date
    assert windows.run("--data-dir", root, *flags) == errors.EXIT_OK
    assert not windows.paused
    assert windows.unread_keys == "\n", "nothing waited for the keyboard"


def test_never_a_pause_for_help(windows):
    with pytest.raises(SystemExit) as exit_:
        windows.run("--help")
    assert exit_.value.code == 0
    assert not windows.paused


@pytest.mark.parametrize(
    "out_tty,stdin_tty", [(False, True), (True, False)], ids=["stdout redirected", "stdin redirected"]
)
def test_never_a_pause_when_a_stream_is_redirected(up_to_date, windows, out_tty, stdin_tty):
    root = up_to_date
    windows.screen(out_tty=out_tty)
    windows.keyboard(tty=stdin_tty)
    assert windows.run("--data-dir", root) == errors.EXIT_OK
    assert not windows.paused
    assert windows.unread_keys == "\n"


@pytest.mark.parametrize("redirect", ["stdin", "stdout"])
def test_nul_is_not_a_person_although_windows_calls_it_a_tty(up_to_date, windows, redirect):
    """`< NUL` / `> NUL`, as services and deployment tools run programs: no pause, no question, no colour."""
    root = up_to_date
    windows.monkeypatch.delenv("NO_COLOR")
    if redirect == "stdout":
        windows.screen(nul=True)
    else:
        windows.keyboard(nul=True)
    assert windows.run("--data-dir", root) == errors.EXIT_OK
    assert not windows.paused
    assert windows.unread_keys == "\n"
    if redirect == "stdout":
        assert "\033[" not in windows.text, "no colour codes into NUL"


@pytest.mark.parametrize(
    "processes,launcher",
    [(3, "explorer.exe"), (1, "svchost.exe"), (1, "CcmExec.exe"), (2, "explorer.exe")],
    ids=["from cmd", "Task Scheduler", "deployment tool", "a second program in the console"],
)
def test_no_pause_unless_explorer_opened_the_window(up_to_date, windows, processes, launcher):
    root = up_to_date
    windows.processes, windows.launcher = processes, launcher
    assert windows.run("--data-dir", root) == errors.EXIT_OK
    assert not windows.paused


def test_a_frozen_exe_shares_its_window_with_its_bootloader(monkeypatch, windows):
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    windows.processes = 2
    assert console.started_by_double_click()
    windows.processes = 3
    assert not console.started_by_double_click()


def test_the_double_click_probe_is_windows_only(monkeypatch):
    monkeypatch.setattr(console, "console_process_count", lambda: 1)
    monkeypatch.setattr(console, "launcher_name", lambda: "explorer.exe")
    monkeypatch.setattr(os, "name", "posix")
    assert not console.started_by_double_click()
    monkeypatch.setattr(os, "name", "nt")
    assert console.started_by_double_click()
    monkeypatch.setattr(console, "console_process_count", lambda: None)
    assert not console.started_by_double_click(), "no answer from Windows: no pause"


def test_the_launcher_skips_pyinstallers_bootloader(monkeypatch):
    me = os.getpid()
    table = {me: (20, "wems-upgrade.exe"), 20: (10, "wems-upgrade.exe"), 10: (1, "explorer.exe")}
    monkeypatch.setattr(console, "_process_table", lambda: table)
    assert console.launcher_name() == "explorer.exe"
    table[10] = (1, "svchost.exe")
    assert console.launcher_name() == "svchost.exe"


def test_a_command_line_mistake_stays_readable_in_a_double_clicked_window(windows):
    assert windows.run("--frobnicate") == errors.EXIT_USAGE
    assert "Unrecognized arguments: --frobnicate" in windows.text and windows.paused


def test_a_folder_dropped_onto_the_exe_is_the_installation(install, windows):
    root = install(3, name="Wareflow EMS")
    windows.keyboard("y\n\n")
    assert windows.run(root) == errors.EXIT_OK
    assert "Done: the database is now g8" in windows.text and windows.paused
    assert query(root, "SELECT count(*) FROM wems_upgrade_history")[0][0] > 0


def test_help_describes_the_folder_argument(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "usage: wems-upgrade [-h]" in out and "[DIR]" in out and "dropped onto" in out


# --- --json: one UTF-8 object, whatever the code page and whatever happens ------------------------


def only_json(windows) -> dict:
    """stdout holds exactly one JSON object, in UTF-8, and nothing else."""
    data = windows.stdout_bytes.decode("utf-8")
    obj, end = json.JSONDecoder().raw_decode(data)
    assert data[end:].strip() == "", f"after the JSON object: {data[end:]!r}"
    return obj


def test_json_is_utf8_through_a_cp1252_pipe(install, windows):
    root = install(4, name="Entrepôt → 東京")
    windows.screen(encoding="cp1252", out_tty=False, err_tty=False)
    windows.keyboard(tty=False)
    assert windows.run("--json", "--yes", "--data-dir", root) == errors.EXIT_OK
    result = only_json(windows)
    assert result["installation"] == str(root.resolve()) and result["status"] == "upgraded"
    assert windows.err.getvalue() == b""


def test_a_script_running_json_yes_never_waits(install, windows):
    """The reported bug: the JSON, then a prompt on stdout, then a wait for Enter that never comes."""
    root = install(4)
    windows.screen(out_tty=False)
    assert windows.run("--json", "--yes", "--data-dir", root) == errors.EXIT_OK
    assert only_json(windows)["status"] == "upgraded"
    assert windows.unread_keys == "\n"


@pytest.mark.parametrize(
    "args,status,code",
    [
        (["--frobnicate"], "usage", errors.EXIT_USAGE),
        (["--to-version"], "usage", errors.EXIT_USAGE),
        (["--sites-file", "no-such-file.txt"], "usage", errors.EXIT_USAGE),
        (["--version"], None, errors.EXIT_OK),
    ],
    ids=["unknown option", "missing value", "unreadable sites file", "version"],
)
def test_json_in_every_exit_path(windows, args, status, code):
    windows.screen(out_tty=False)
    assert windows.run("--json", *args) == code
    result = only_json(windows)
    if status:
        assert (result["status"], result["exit_code"]) == (status, code) and result["error"]["message"]
    assert not windows.paused


def test_a_message_the_code_page_cannot_show_does_not_crash(windows):
    windows.screen(encoding="cp1252", out_tty=False, err_tty=False)
    assert windows.run("--data-dir", "a", "b", "東京") == errors.EXIT_USAGE
    assert "Unrecognized arguments" in windows.text and "Traceback" not in windows.text


def test_streams_replace_what_they_cannot_encode(windows):
    windows.screen(encoding="cp1252")
    windows.attach()
    console.protect_streams()
    print("→ 東京")
    sys.stdout.flush()
    assert windows.stdout_bytes == b"? ??\n"


# --- Ctrl+C, Ctrl+Break, closing the window --------------------------------------------------------


def ctrl_break(monkeypatch) -> int:
    """SIGBREAK: Windows' own, or SIGUSR1 in its place on POSIX."""
    if not hasattr(signal, "SIGBREAK"):
        monkeypatch.setattr(signal, "SIGBREAK", signal.SIGUSR1, raising=False)
    return signal.SIGBREAK


def interrupt_at(monkeypatch, point: str, signum: int = signal.SIGINT, *, then=None) -> list[str]:
    """Deliver a real signal to this process when the upgrade reaches crash point `point`."""
    reached = []

    def crashpoint(name: str) -> None:
        if name == point and not reached:
            reached.append(name)
            if then:
                then()
            else:
                signal.raise_signal(signum)
                time.sleep(0.5)
            raise AssertionError(f"the signal at {name} did not stop the upgrade")

    monkeypatch.setattr(upgrade, "crashpoint", crashpoint)
    monkeypatch.setattr(journal, "crashpoint", crashpoint)
    return reached


def leftovers(root: Path) -> list[str]:
    return sorted(
        p.name
        for p in root.rglob("*")
        if "wems-upgrade-" in p.name and p.parent.name != "logs" and "backups" not in p.parts
    )


def generation(root: Path) -> str:
    return (
        "g8" if query(root, "SELECT count(*) FROM sqlite_master WHERE name = 'wems_upgrade_history'")[0][0] else "old"
    )


def settings_files(root: Path) -> list[str]:
    return sorted(p.name for p in root.glob("config.*"))


BEFORE_ANY_CHANGE = ["backup_done", "migrated", "wal_folded", "placed_0"]
HALF_WAY = ["journal_swapping", "swapped", "journal_committed"]


@pytest.mark.parametrize("point", BEFORE_ANY_CHANGE + HALF_WAY)
def test_ctrl_c_at_every_stage_is_a_plain_message_and_never_half_an_upgrade(install, windows, monkeypatch, point):
    root = install(1)
    before, old_settings = content(root), settings_files(root)
    reached = interrupt_at(monkeypatch, point)
    code = windows.run("--yes", "--data-dir", root)
    assert reached == [point]
    assert code == errors.EXIT_STOPPED
    text = windows.text
    assert "Traceback" not in text and "Stopped by Ctrl+C" in text
    if point in BEFORE_ANY_CHANGE:
        assert "Nothing was changed" in text
        assert content(root) == before and leftovers(root) == []
        assert (root / "config.json").is_file() and not (root / "config.yaml").exists()
    else:
        assert "Run wems-upgrade again: it finishes or undoes the interrupted change" in text
        journal.recover(locate(root).database)
        assert (generation(root), settings_files(root)) in [
            ("old", old_settings),
            ("g8", ["config.json.before-wems-upgrade", "config.yaml"]),
        ]
    monkeypatch.undo()
    assert main(["--yes", "--data-dir", str(root)]) == errors.EXIT_OK
    assert query(root, "SELECT count(*) FROM sqlite_master WHERE name = 'wems_upgrade_history'")[0][0] == 1
    assert leftovers(root) == []


def test_a_second_ctrl_c_does_not_cut_the_undo_short(install, windows, monkeypatch):
    root = install(1)
    before = content(root)
    put_back = journal._put_back

    def impatient_put_back(aside, target):
        signal.raise_signal(signal.SIGINT)
        time.sleep(0.05)
        put_back(aside, target)

    monkeypatch.setattr(journal, "_put_back", impatient_put_back)
    interrupt_at(monkeypatch, "placed_1")
    assert windows.run("--yes", "--data-dir", root) == errors.EXIT_STOPPED
    assert "Nothing was changed" in windows.text
    assert content(root) == before and leftovers(root) == []
    assert (root / "config.json").is_file() and not (root / "config.yaml").exists()


def test_ctrl_c_with_json_gives_one_object(install, windows, monkeypatch):
    root = install(2)
    windows.screen(out_tty=False)
    interrupt_at(monkeypatch, "migrated")
    assert windows.run("--json", "--yes", "--data-dir", root) == errors.EXIT_STOPPED
    result = only_json(windows)
    assert (result["status"], result["exit_code"]) == ("stopped", errors.EXIT_STOPPED)
    assert "Nothing was changed" in result["error"]["advice"]


def test_ctrl_c_in_a_double_clicked_window_waits_so_the_message_can_be_read(install, windows, monkeypatch):
    root = install(2)
    interrupt_at(monkeypatch, "migrated")
    windows.keyboard("y\n\n")
    assert windows.run(root) == errors.EXIT_STOPPED
    assert "Stopped by Ctrl+C" in windows.text and windows.paused


def test_ctrl_c_at_a_question_stops_cleanly(install, windows, monkeypatch):
    root = install(2)
    before = content(root)

    def ctrl_c_at_the_keyboard(question):
        signal.raise_signal(signal.SIGINT)
        time.sleep(0.5)

    monkeypatch.setattr(console.Console, "ask", lambda self, question: ctrl_c_at_the_keyboard(question))
    assert windows.run(root) == errors.EXIT_STOPPED
    assert "Stopped by Ctrl+C.\n" in windows.text and "Nothing was changed" in windows.text
    assert content(root) == before


def test_several_sites_stop_at_the_one_interrupted(install, windows, monkeypatch):
    first, second = install(2, "first"), install(3, "second")
    untouched = content(second)
    interrupt_at(monkeypatch, "migrated")
    windows.screen(out_tty=False)
    assert windows.run("--json", "--yes", "--data-dir", first, "--data-dir", second) == errors.EXIT_STOPPED
    result = only_json(windows)
    assert result["status"] == "stopped" and [s["status"] for s in result["sites"]] == ["stopped"]
    assert content(second) == untouched


@pytest.mark.parametrize("name,words", [("SIGTERM", "a request to stop"), ("SIGHUP", "the terminal being closed")])
def test_termination_requests_take_the_same_path(install, windows, monkeypatch, name, words):
    if not hasattr(signal, name):
        pytest.skip(f"{name} does not exist here")
    root = install(2)
    before = content(root)
    interrupt_at(monkeypatch, "placed_0", getattr(signal, name))
    assert windows.run("--yes", "--data-dir", root) == errors.EXIT_STOPPED
    assert f"Stopped by {words}" in windows.text and "Traceback" not in windows.text
    assert content(root) == before


def test_ctrl_break_takes_the_same_path(install, windows, monkeypatch):
    """Windows' SIGBREAK, played elsewhere by a signal POSIX has (this process is the only one to see it)."""
    root = install(2)
    interrupt_at(monkeypatch, "migrated", ctrl_break(monkeypatch))
    assert windows.run("--yes", "--data-dir", root) == errors.EXIT_STOPPED
    assert "Stopped by Ctrl+Break" in windows.text


def test_closing_the_window_stops_cleanly_before_windows_ends_the_process(install, windows, monkeypatch):
    """Windows calls the console handler in a thread of its own and ends the process when it returns."""
    ctrl_break(monkeypatch)
    root = install(2)
    before = content(root)
    handler = {}

    def close_the_window():
        def windows_thread():
            started = time.monotonic()
            handler["returned"] = console.on_console_event(console.CTRL_CLOSE_EVENT)
            handler["seconds"] = time.monotonic() - started

        threading.Thread(target=windows_thread).start()
        time.sleep(2)

    interrupt_at(monkeypatch, "placed_0", then=close_the_window)
    windows.keyboard("y\n\n")
    assert windows.run(root) == errors.EXIT_STOPPED
    deadline = time.monotonic() + 5
    while "returned" not in handler and time.monotonic() < deadline:
        time.sleep(0.05)
    assert handler["returned"] is True and handler["seconds"] < console.CLOSE_GRACE_SECONDS
    assert "Stopped by the window being closed" in windows.text and not windows.paused
    assert content(root) == before


def test_ctrl_c_and_ctrl_break_events_are_left_to_python(windows):
    assert console.on_console_event(0) is False
    assert console.on_console_event(1) is False


def test_an_interrupt_outside_any_installation_says_so(windows, monkeypatch):
    def interrupted_version():
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "version_text", interrupted_version)
    assert windows.run("--version") == errors.EXIT_STOPPED
    assert "Stopped by Ctrl+C." in windows.text and "No installation was being changed" in windows.text
