"""Shared fixtures: real WEMS installations on disk (helpers to read and compare them: support.py)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings
from support import CRASH_POINTS_TRIED

from upgrader import i18n
from upgrader.demo import create_installation
from upgrader.loader import load_catalog

# CI runs the same property-test examples every time (a failure there is reproducible); a
# developer's run explores new ones.
hypothesis_settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")


# Screens are in the system's language: the suite reads English unless a test asks for French
# (--lang, or i18n.use), whatever the language of the machine or of the programs it starts.
if os.name != "nt":
    os.environ["LC_ALL"] = "C.UTF-8"
# Never the network: the update check of every run, here or in a program the suite starts, asks a
# port where nothing listens (tests/test_updates.py serves a feed of its own).
os.environ["WEMS_UPGRADE_RELEASES_FEED"] = "http://127.0.0.1:9/releases"


@pytest.fixture(autouse=True)
def english_unless_asked(monkeypatch):
    monkeypatch.setattr(i18n, "system_language", lambda: i18n.DEFAULT)
    yield
    i18n.use(i18n.DEFAULT)


@pytest.fixture(scope="session")
def catalog():
    return load_catalog()


@pytest.fixture(scope="session")
def templates(tmp_path_factory):
    """One pristine installation per generation, built once per test session."""
    base = tmp_path_factory.mktemp("templates")
    made = {}

    def get(generation: int) -> Path:
        if generation not in made:
            made[generation] = base / f"g{generation}"
            create_installation(made[generation], generation)
        return made[generation]

    return get


@pytest.fixture
def install(templates, tmp_path):
    """A fresh copy of generation N's installation: install(N) -> its folder."""

    def make(generation: int, name: str | None = None) -> Path:
        root = tmp_path / (name or f"site-g{generation}")
        shutil.copytree(templates(generation), root)
        return root

    return make


def pytest_terminal_summary(terminalreporter):
    if CRASH_POINTS_TRIED:
        terminalreporter.write_line(
            f"crash matrix: {len(CRASH_POINTS_TRIED)} crash points tried "
            f"(SIGKILL of a real upgrader process), every one converged"
        )
