"""The user's language: every text has its French, the French reads as French, the language is
the system's (or --lang's), and what scripts and support read (--json, the log) stays English."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest
from support import database

from upgrader import i18n
from upgrader.cli import main

ROOT = Path(__file__).resolve().parent.parent


def _catalogs():
    spec = importlib.util.spec_from_file_location("wems_catalogs", ROOT / "build" / "catalogs.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


catalogs = _catalogs()
FRENCH = catalogs.read_po(catalogs.po_path("fr"))[1]


def test_the_catalogues_hold_exactly_the_texts_the_program_shows(capsys):
    """A text added, changed or no longer used, without `python build/catalogs.py` run, fails here."""
    assert catalogs.main(["--check"]) == 0, capsys.readouterr().out


def test_every_text_has_its_french():
    missing = [entry.msgid for entry in FRENCH.values() if not entry.done]
    assert not missing, f"{len(missing)} texts without French, first: {missing[:5]}"


PLACEHOLDER = re.compile(r"\{[a-z_]*\}|%\([a-z_]+\)[sr]|%[sr]")


@pytest.mark.parametrize("msgid", sorted(FRENCH))
def test_the_french_keeps_every_value_and_reads_as_french(msgid):
    entry = FRENCH[msgid]
    for english, french in zip([entry.msgid, entry.plural or entry.msgid], entry.translation, strict=False):
        assert sorted(PLACEHOLDER.findall(french)) == sorted(PLACEHOLDER.findall(english))
        assert not re.search(r"[\w)»}\]'\"][:;?!](?=\s|$)", french), f"no space before : ; ? ! in {french!r}"
        assert not re.search(r" [:;?!»]|« ", french), f"a breaking space before : ; ? ! in {french!r}"
        if len(english.split()) >= 3:
            assert french != english, "left in English"


GLOSSARY = {
    "medical visit": "visite",
    "training": "formation",
    "contract": "contrat",
    "amendment": "avenant",
    "CACES": "CACES",
}


@pytest.mark.parametrize("english_word", GLOSSARY)
def test_the_french_uses_the_app_s_own_words(english_word):
    for entry in FRENCH.values():
        french = " ".join(entry.translation)
        if english_word == "CACES":
            assert "CACES" not in entry.msgid or "CACES" in french, entry.msgid
        elif english_word in entry.msgid.lower():
            assert GLOSSARY[english_word] in french.lower(), entry.msgid


@pytest.mark.parametrize(
    ("environ", "language"),
    [
        ({"LANG": "fr_FR.UTF-8"}, "fr"),
        ({"LANG": "fr_CA"}, "fr"),
        ({"LANG": "en_GB.UTF-8"}, "en"),
        ({"LANG": "de_DE.UTF-8"}, "en"),
        ({"LANG": "C"}, "en"),
        ({}, "en"),
        ({"LANG": "fr_FR.UTF-8", "LC_ALL": "C.UTF-8"}, "en"),
        ({"LANG": "en_US.UTF-8", "LC_MESSAGES": "fr_BE.UTF-8"}, "fr"),
        ({"LANG": "en_US.UTF-8", "LC_ALL": "fr_FR@euro"}, "fr"),
    ],
)
def test_the_language_is_the_system_s(environ, language):
    assert i18n.posix_language(environ) == language


@pytest.mark.skipif(sys.platform != "win32", reason="the Windows display language")
def test_on_windows_the_language_is_the_display_language(monkeypatch):
    import ctypes

    for langid, language in ((0x040C, "fr"), (0x080C, "fr"), (0x0409, "en"), (0x0407, "en")):
        monkeypatch.setattr(ctypes.windll.kernel32, "GetUserDefaultUILanguage", lambda langid=langid: langid)
        assert i18n.windows_language() == language


def test_a_french_system_gets_french_screens(install, monkeypatch, capsys):
    monkeypatch.setattr(i18n, "system_language", lambda: "fr")
    root = install(2)
    assert main(["--data-dir", str(root), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "SIMULATION" in out and "DRY RUN" not in out


def test_lang_overrides_the_system(install, monkeypatch, capsys):
    monkeypatch.setattr(i18n, "system_language", lambda: "fr")
    root = install(2)
    assert main(["--data-dir", str(root), "--dry-run", "--lang", "en"]) == 0
    assert "DRY RUN" in capsys.readouterr().out


def test_help_is_in_french(capsys):
    with pytest.raises(SystemExit):
        main(["--lang", "fr", "--help"])
    out = capsys.readouterr().out
    assert re.match(r"utilisation\s:", out) and "codes de sortie" in out and re.search(r"options\s:", out)


def test_a_bad_command_line_is_answered_in_french(capsys):
    assert main(["--lang", "fr", "--no-such-flag"]) == 2
    err = capsys.readouterr().err
    assert "arguments non reconnus" in err


def _json_run(root, *args) -> dict:
    return main(["--data-dir", str(root), "--json", *args])


def test_json_and_exit_codes_never_change_with_the_language(install, capsys):
    objects = []
    for language in ("en", "fr"):
        root = install(2, name=f"site-{language}")
        database(root).write_bytes(b"hello")
        code = main(["--data-dir", str(root), "--json", "--lang", language])
        found = json.loads(capsys.readouterr().out.replace(f"site-{language}", "site"))
        found.pop("log")
        objects.append((code, found))
    assert objects[0] == objects[1]
    assert "is not a SQLite database" in objects[0][1]["error"]["message"]


def test_the_log_stays_english_for_support(install, capsys):
    root = install(2)
    (root / "config.yaml").write_text("alerts:\n\tcritical_days: 7\n", encoding="utf-8")
    assert main(["--data-dir", str(root), "--yes", "--lang", "fr"]) == 8
    assert "REFUS" in capsys.readouterr().err
    log = next((root / "logs").glob("wems-upgrade-*.log")).read_text(encoding="utf-8")
    assert "refused (bad-settings)" in log and "é" not in log.split("refused (bad-settings)")[1].splitlines()[0]
