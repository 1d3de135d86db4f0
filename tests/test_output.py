"""What a person sees and what a script reads: snapshots of every screen under UTF-8 and a
legacy Windows encoding, --json, exit codes, several sites, the log, colours, questions."""

from __future__ import annotations

import io
import json
import os
import re
import sys
from pathlib import Path

import pytest
from support import database, execute, file_digests, query

from upgrader import errors
from upgrader.cli import main
from upgrader.console import Console, ProgressBars, to_ascii

SNAPSHOTS = Path(__file__).parent / "snapshots"
VARIABLE = [
    (re.compile(r"\d{8}-\d{6}(-\d+)?(_\d+)?"), "<STAMP>"),
    (re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d(:\d\d)?( UTC)?"), "<DATE>"),
    (re.compile(r"\d+([.,]\d+)? (bytes|KB|MB|GB|octets|Ko|Mo|Go)"), "<SIZE>"),
    (re.compile(r"\(\d+\.\d s\)"), "(<T> s)"),
    (re.compile(r"about \d+ s"), "about <T> s"),
    (re.compile(r"environ \d+ s"), "environ <T> s"),
    (re.compile(r"pytest-of-[^/]+/pytest-\d+/[^/\s]+"), "<TMP>"),
]


class Screen:
    """Runs main() with stdout and stderr encoded as a given console would, and keeps the bytes."""

    def __init__(self, monkeypatch, encoding: str):
        self.encoding = encoding
        self.out, self.err = io.BytesIO(), io.BytesIO()
        monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(self.out, encoding=encoding, newline="\n"))
        monkeypatch.setattr(sys, "stderr", io.TextIOWrapper(self.err, encoding=encoding, newline="\n"))

    def run(self, *args) -> int:
        code = main(list(args))
        sys.stdout.flush()
        sys.stderr.flush()
        return code

    def text(self, root: Path | None = None) -> str:
        text = (self.out.getvalue() + self.err.getvalue()).decode(self.encoding)
        if root:
            text = text.replace(str(root), "<ROOT>")
        text = text.replace(os.sep, "/")
        for pattern, replacement in VARIABLE:
            text = pattern.sub(replacement, text)
        return text


def matches_snapshot(name: str, text: str) -> None:
    path = SNAPSHOTS / f"{name}.txt"
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        SNAPSHOTS.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"no snapshot {path.name}: run once with UPDATE_SNAPSHOTS=1 and review it"
    assert text == path.read_text(encoding="utf-8")


def broken_schema(root):
    execute(root, 'ALTER TABLE "employees" ADD COLUMN "badge_number" VARCHAR(20)')


def newer(root):
    execute(
        root,
        "INSERT INTO migrations (name, batch, applied_at) VALUES "
        "('20270301_120000_add_payroll', 1, '2027-03-01 12:00:00')",
    )


def not_a_database(root):
    for suffix in ("-wal", "-shm"):
        Path(f"{database(root)}{suffix}").unlink(missing_ok=True)
    database(root).write_bytes(b"hello")


def bad_settings(root):
    (root / "config.yaml").write_text("alerts:\n\tcritical_days: 7\n", encoding="utf-8")


def app_open(root):
    from test_in_use import add_lock

    add_lock(root, minutes_ago=0.2)


def upgraded(root) -> None:
    assert main(["--yes", "--data-dir", str(root), "--json"]) == 0


def restore_its_backup(root) -> list[str]:
    upgraded(root)
    return ["--restore", str(next((root / "backups").iterdir()))]


#: screen: (generation, what to do first (it may return more arguments), arguments)
SCREENS = {
    "upgrade": (2, None, ["--yes"]),
    "dry-run": (2, None, ["--dry-run"]),
    "nothing-to-do": (8, upgraded, ["--yes"]),
    "refused-unknown-schema": (6, broken_schema, ["--yes"]),
    "refused-newer": (8, newer, ["--yes"]),
    "refused-not-a-database": (3, not_a_database, ["--yes"]),
    "refused-bad-settings": (6, bad_settings, ["--yes"]),
    "refused-app-open": (6, app_open, ["--yes"]),
    "show-sql": (5, None, ["--show-sql", "--to-version", "g7"]),
    "status": (3, None, ["--status"]),
    "list-backups": (2, upgraded, ["--list-backups"]),
    "restore": (2, restore_its_backup, ["--yes"]),
}


@pytest.mark.parametrize("encoding", ["utf-8", "cp1252"])
@pytest.mark.parametrize("language", ["en", "fr"])
@pytest.mark.parametrize("screen", SCREENS)
def test_every_screen_matches_its_snapshot(install, monkeypatch, screen, language, encoding):
    generation, prepare, args = SCREENS[screen]
    root = install(generation, name="site")
    more = (prepare(root) or []) if prepare else []
    shown = Screen(monkeypatch, encoding)
    code = shown.run("--data-dir", str(root), "--lang", language, *args, *more)
    assert (code == 0) == (not screen.startswith("refused"))
    text = shown.text(root)
    if encoding == "cp1252":
        assert (
            ("✔" not in text and "[ok]" in text)
            or screen.startswith("refused")
            or screen in ("nothing-to-do", "show-sql", "status", "list-backups")
        )
        assert "Traceback" not in text
    matches_snapshot(f"{screen}-{language}-{encoding}", text)


def test_a_console_that_cannot_show_accents_gets_plain_ascii(install, monkeypatch):
    root = install(2, name="Entrepôt Général")
    shown = Screen(monkeypatch, "ascii")
    assert shown.run("--yes", "--data-dir", str(root)) == 0
    text = shown.text()
    assert "Entrepot General" in text and "[ok] rows" in text
    assert to_ascii("✔ Préparation → Quai …") == "[ok] Preparation -> Quai ..."


def test_json_for_an_upgrade_has_every_documented_field(install, capsys):
    root = install(4)
    assert main(["--yes", "--json", "--data-dir", str(root)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {
        "wems_upgrade",
        "status",
        "exit_code",
        "installation",
        "database",
        "from",
        "to",
        "steps",
        "app_migrations_recorded",
        "backup",
        "checks",
        "config",
        "seconds",
        "error",
        "log",
    } <= result.keys()
    assert (result["status"], result["exit_code"]) == ("upgraded", 0)
    assert (result["from"]["generation"], result["to"]["generation"]) == ("g4", "g8")
    assert [s["generation"] for s in result["steps"]] == ["g5", "g6", "g7", "g8"]
    assert all(c["ok"] for c in result["checks"]) and Path(result["backup"]).is_dir()
    assert result["config"]["read_after"].endswith("config.yaml") and Path(result["log"]).is_file()


@pytest.mark.parametrize(
    "setup,status,code,reference",
    [
        (None, "dry_run", 0, None),
        ("upgrade first", "up_to_date", 0, None),
        (broken_schema, "refused", errors.EXIT_UNKNOWN_SCHEMA, "unknown-structure"),
        (not_a_database, "refused", errors.EXIT_BAD_INSTALLATION, "no-usable-database"),
    ],
)
def test_json_statuses_and_exit_codes(install, capsys, setup, status, code, reference):
    root = install(3)
    if setup == "upgrade first":
        main(["--yes", "--json", "--data-dir", str(root)])
        capsys.readouterr()
    elif setup:
        setup(root)
    args = ["--json", "--data-dir", str(root)] + (["--dry-run"] if status == "dry_run" else ["--yes"])
    assert main(args) == code
    result = json.loads(capsys.readouterr().out)
    assert (result["status"], result["exit_code"]) == (status, code)
    if code:
        assert result["error"]["message"] and result["error"]["advice"]
        assert result["error"]["reference"] == reference
    else:
        assert result["error"] is None


def test_several_sites_one_broken_the_others_upgraded(install, capsys, tmp_path):
    good, broken, other = install(1, "good"), install(5, "broken"), install(6, "other")
    broken_schema(broken)
    broken_before = file_digests(broken)
    listing = tmp_path / "sites.txt"
    listing.write_text(f"# client sites\n{other}\n", encoding="utf-8")
    code = main(["--yes", "--data-dir", str(good), "--data-dir", str(broken), "--sites-file", str(listing)])
    assert code == errors.EXIT_SOME_SITES
    out = capsys.readouterr().out
    assert "Summary of all installations" in out and "2 of 3 installation(s) succeeded" in out
    assert query(good, "SELECT count(*) FROM wems_upgrade_history")[0][0] > 0
    assert query(other, "SELECT count(*) FROM wems_upgrade_history")[0][0] > 0
    assert file_digests(broken) == broken_before


def test_several_sites_as_json(install, capsys):
    a, b = install(2, "a"), install(3, "b")
    assert main(["--yes", "--json", "--data-dir", str(a), "--data-dir", str(b)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [s["status"] for s in result["sites"]] == ["upgraded", "upgraded"]


def test_status_says_what_the_installation_is_and_changes_nothing(install, capsys):
    root = install(3)
    before = file_digests(root)
    assert main(["--status", "--data-dir", str(root)]) == 0
    out = capsys.readouterr().out
    assert "Database:  g3" in out and "g4: Medical visits" in out and "config.json (JSON, valid)" in out
    assert "Backups:   0" in out and "App:       closed" in out
    assert file_digests(root) == before


def test_an_unexpected_error_shows_no_traceback_and_logs_it(install, capsys, monkeypatch):
    root = install(2)

    def boom(*args, **kwargs):
        raise RuntimeError("simulated bug")

    monkeypatch.setattr("upgrader.cli.upgrade", boom)
    assert main(["--yes", "--data-dir", str(root)]) == errors.EXIT_INTERNAL
    err = capsys.readouterr().err
    assert "Traceback" not in err and "unexpected problem" in err
    log = next((root / "logs").glob("wems-upgrade-*.log")).read_text(encoding="utf-8")
    assert "Traceback" in log and "simulated bug" in log


def test_the_log_has_what_support_needs_and_no_personal_data(install):
    root = install(1)
    names = {n for row in query(root, "SELECT first_name, last_name FROM employees") for n in row}
    assert main(["--yes", "--data-dir", str(root)]) == 0
    log = next((root / "logs").glob("wems-upgrade-*.log")).read_text(encoding="utf-8")
    assert "g1 -> g8" in log and "checks:" in log and "SQLite" in log
    assert not [n for n in names if n in log]


def test_questions_are_asked_at_a_keyboard(install, monkeypatch, capsys):
    root = install(2)
    before = file_digests(root)
    keyboard = io.StringIO("n\n")
    keyboard.isatty = lambda: True
    monkeypatch.setattr(sys, "stdin", keyboard)
    assert main(["--data-dir", str(root)]) == errors.EXIT_USAGE
    assert "Upgrade this installation now?" in capsys.readouterr().out
    assert file_digests(root) == before
    keyboard = io.StringIO("oui\n")
    keyboard.isatty = lambda: True
    monkeypatch.setattr(sys, "stdin", keyboard)
    assert main(["--data-dir", str(root)]) == 0


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_colour_only_on_a_terminal_and_never_with_no_color(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    terminal = FakeTerminal()
    Console(terminal, terminal).say("  ✔ rows: kept")
    assert "\033[32m" in terminal.getvalue()
    plain = io.StringIO()
    Console(plain, plain).say("  ✔ rows: kept")
    assert "\033[" not in plain.getvalue()
    terminal = FakeTerminal()
    Console(terminal, terminal, no_color=True).say("  ✔ rows: kept")
    assert "\033[" not in terminal.getvalue()
    monkeypatch.setenv("NO_COLOR", "1")
    terminal = FakeTerminal()
    Console(terminal, terminal).say("  ✔ rows: kept")
    assert "\033[" not in terminal.getvalue()


def test_progress_bars_only_on_a_terminal(install):
    assert Console(io.StringIO(), io.StringIO()).progress() is None
    terminal = FakeTerminal()
    bars = Console(terminal, terminal).progress()
    assert isinstance(bars, ProgressBars)
    bars("backup", 10, 100)
    bars("backup", 100, 100)
    assert "backup" in terminal.getvalue()


def test_a_rebuild_reports_rows_that_only_grow_and_end_at_the_total(tmp_path):
    from upgrader.demo import create_installation
    from upgrader.installation import locate
    from upgrader.upgrade import upgrade

    root = tmp_path / "big"
    create_installation(root, 1, employees=400, years=4, visits_per_year=3)
    seen = []
    upgrade(locate(root, environ={}), progress=lambda stage, done, total: seen.append((stage, done, total)))
    rebuild = [(d, t) for s, d, t in seen if s == "rebuild medical_visits"]
    assert rebuild and rebuild[-1][0] == rebuild[-1][1]
    assert [d for d, _t in rebuild] == sorted(d for d, _t in rebuild)
    assert {s for s, _d, _t in seen} >= {"copy", "checks", "rebuild caces", "rebuild employees"}
    assert "backup" not in {s for s, _d, _t in seen}, "the backup is the original file: no second copy"


def test_an_open_bar_is_redrawn_while_a_long_step_runs():
    import time as clock

    terminal = FakeTerminal()
    bars = Console(terminal, terminal).progress()
    bars("checks", 10, 600)
    before = len(terminal.getvalue())
    clock.sleep(1.2)
    assert len(terminal.getvalue()) > before, "the heartbeat redraws the bar"
    bars.close()


def test_a_folder_without_a_database_gets_no_logs_folder(tmp_path, capsys):
    assert main(["--yes", "--data-dir", str(tmp_path)]) == errors.EXIT_BAD_INSTALLATION
    assert not (tmp_path / "logs").exists()


def test_stopping_at_a_question_says_nothing_was_changed(install, capsys):
    root = install(3)
    assert main(["--data-dir", str(root)]) == errors.EXIT_USAGE
    assert "Nothing was changed" in capsys.readouterr().err


def test_status_for_an_older_target_does_not_call_it_the_newest(install, capsys):
    root = install(3)
    assert main(["--status", "--to-version", "g3", "--data-dir", str(root)]) == 0
    out = capsys.readouterr().out
    assert "already g3" in out and "newest" not in out


def test_french_prefixes_and_headings_are_coloured_like_the_english(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    colours = {
        "REFUSED: no": "\033[33m",
        "REFUSÉ\u00a0: non": "\033[33m",
        "DRY RUN: nothing": "\033[33m",
        "SIMULATION\u00a0: rien": "\033[33m",
        "FAILED: undone": "\033[31m",
        "ÉCHEC\u00a0: annulé": "\033[31m",
        "ERROR: bug": "\033[31m",
        "ERREUR\u00a0: bogue": "\033[31m",
        "Validation": "\033[1m",
        "Contrôles": "\033[1m",
        "Fichiers que modifierait la mise à niveau réelle": "\033[1m",
    }
    for line, colour in colours.items():
        terminal = FakeTerminal()
        Console(terminal, terminal).say(line)
        assert terminal.getvalue().startswith(colour), line
    terminal = FakeTerminal()
    Console(terminal, terminal).say("Installation :    C:\\WEMS")
    assert "\033[" not in terminal.getvalue()


def test_french_typography_falls_back_to_plain_ascii():
    assert to_ascii("REFUSÉ\u00a0: « config.yaml »") == 'REFUSE : " config.yaml "'


def test_a_french_question_takes_o_for_oui_and_says_so(install, monkeypatch, capsys):
    root = install(2)
    keyboard = io.StringIO("o\n")
    keyboard.isatty = lambda: True
    monkeypatch.setattr(sys, "stdin", keyboard)
    assert main(["--data-dir", str(root), "--lang", "fr"]) == 0
    out = capsys.readouterr().out
    assert "[o/N]" in out and "[y/N]" not in out
    assert "Vous pouvez maintenant relancer Wareflow EMS." in out


def test_without_a_keyboard_the_question_is_refused_in_french_and_logged_in_english(install, capsys):
    root = install(2)
    assert main(["--data-dir", str(root), "--lang", "fr"]) == errors.EXIT_USAGE
    err = capsys.readouterr().err
    assert "Il n'y a pas de clavier pour répondre." in err and "Rien n'a été modifié." in err
    log = next((root / "logs").glob("wems-upgrade-*.log")).read_text(encoding="utf-8")
    assert "There is no keyboard to answer." in log and "clavier" not in log


def test_a_newer_release_is_named_with_where_to_get_it():
    from upgrader import i18n
    from upgrader.report import render_update
    from upgrader.updates import NewerRelease

    newer = NewerRelease("9.9.9", "https://example.invalid/releases/9.9.9")
    text = render_update(newer)
    assert "9.9.9" in text and newer.url in text and "Nothing was downloaded" in text
    assert len(text.splitlines()) == 2
    i18n.use("fr")
    text = render_update(newer)
    assert "9.9.9" in text and newer.url in text and "Rien n'a été téléchargé" in text


def test_a_cp1252_console_keeps_the_accents_it_can_show():
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="cp1252", newline="\n")
    Console(stream, stream).say("  ✔ intégrité\u00a0: vérifiée → ok")
    stream.flush()
    assert raw.getvalue().decode("cp1252") == "  [ok] intégrité\u00a0: vérifiée -> ok\n"
