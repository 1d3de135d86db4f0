"""The built one-file executable, not the Python package: what users download and run."""

from __future__ import annotations

import importlib.util
import json
import locale
import os
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import apsw
import pytest
from support import GENERATIONS, database, file_digests

from upgrader import errors
from upgrader.schema import differences, read_schema

pytestmark = pytest.mark.binary
ROOT = Path(__file__).resolve().parent.parent


def _load_builder():
    spec = importlib.util.spec_from_file_location("wems_build", ROOT / "build" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


builder = _load_builder()


def _sources_newer_than(binary: Path) -> bool:
    built = binary.stat().st_mtime
    sources = [
        *(ROOT / "upgrader").rglob("*.py"),
        *(ROOT / "migrations").rglob("*.*"),
        *(ROOT / "upgrader" / "locale").rglob("*.mo"),
        ROOT / "build" / "wems-upgrade.spec",
        ROOT / "build" / "exe_metadata.py",
        ROOT / "build" / "wems-upgrade.ico",
    ]
    return any(p.stat().st_mtime > built for p in sources)


@pytest.fixture(scope="session")
def binary() -> Path:
    """The executable in build/out/, (re)built by build/build.py when missing or older than the sources."""
    path = builder.executable()
    if not path.exists() or _sources_newer_than(path):
        builder.build()
    return path


def text_encoding() -> str:
    """What the executable's text goes to a pipe in: the locale's encoding, which on Windows is the
    ANSI code page (cp1252 there: "PC-ENTREPÔT-03" is not UTF-8), and UTF-8 elsewhere."""
    return locale.getencoding() if sys.platform == "win32" else "utf-8"


def run(binary: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run the executable; stdout decoded strictly (as UTF-8 with --json, which always is), stderr
    leniently (only its words are checked). `env`: variables added to the environment."""
    environ = {**os.environ, **env} if env else None
    done = subprocess.run([str(binary), *args], capture_output=True, timeout=300, env=environ)
    stdout = done.stdout.decode("utf-8" if "--json" in args else text_encoding()).replace("\r\n", "\n")
    stderr = done.stderr.decode(text_encoding(), errors="replace").replace("\r\n", "\n")
    return subprocess.CompletedProcess(done.args, done.returncode, stdout, stderr)


def test_version_names_the_embedded_migrations(binary, catalog):
    done = run(binary, "--version")
    assert done.returncode == 0
    assert f"migrations sha256 {catalog.digest}" in done.stdout
    assert "targets Wareflow EMS 2.3.2" in done.stdout and "SQLite 3." in done.stdout


@pytest.mark.parametrize("generation", GENERATIONS)
def test_the_binary_upgrades_every_generation(binary, install, catalog, generation):
    root = install(generation, name=f"PC-ENTREPÔT-{generation:02}")
    done = run(binary, "--yes", "--json", "--data-dir", str(root))
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == "upgraded" and all(c["ok"] for c in result["checks"])
    with closing(apsw.Connection(str(database(root)), flags=apsw.SQLITE_OPEN_READONLY)) as conn:
        assert differences(read_schema(conn), catalog.latest.schema) == []
    assert (root / "config.yaml").exists()


def test_the_binary_dry_run_changes_nothing(binary, install):
    root = install(1)
    before = file_digests(root)
    done = run(binary, "--dry-run", "--data-dir", str(root))
    assert done.returncode == 0 and "DRY RUN" in done.stdout
    assert file_digests(root) == before


def test_the_binary_speaks_french(binary, install):
    """--lang fr: the catalogue is embedded; the pipe still gets the ANSI code page on Windows."""
    root = install(2, name="Entrepôt")
    before = file_digests(root)
    dry = run(binary, "--dry-run", "--lang", "fr", "--data-dir", str(root))
    assert dry.returncode == 0 and "SIMULATION" in dry.stdout and "DRY RUN" not in dry.stdout
    assert file_digests(root) == before
    done = run(binary, "--yes", "--lang", "fr", "--data-dir", str(root))
    assert done.returncode == 0 and "relancer Wareflow EMS" in done.stdout, done.stdout + done.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="Windows reads its display language, not LANG")
def test_the_binary_follows_a_french_system(binary, install):
    root = install(2)
    french = run(binary, "--dry-run", "--data-dir", str(root), env={"LC_ALL": "", "LANG": "fr_FR.UTF-8"})
    assert french.returncode == 0 and "SIMULATION" in french.stdout
    scripted = run(binary, "--dry-run", "--json", "--data-dir", str(root), env={"LANG": "fr_FR.UTF-8"})
    assert json.loads(scripted.stdout)["status"] == "dry_run"


def test_the_binary_lists_and_restores_backups(binary, install):
    root = install(3)
    before = file_digests(root)
    assert run(binary, "--yes", "--data-dir", str(root)).returncode == 0
    listed = run(binary, "--list-backups", "--data-dir", str(root))
    assert listed.returncode == 0 and "before_upgrade_g8" in listed.stdout
    backup = next((root / "backups").iterdir())
    restored = run(binary, "--yes", "--restore", str(backup), "--data-dir", str(root))
    assert restored.returncode == 0, restored.stderr
    assert (root / "config.json").read_bytes() == (backup / "config.json").read_bytes()
    assert not (root / "config.yaml").exists()
    assert "config.json" in before


@pytest.mark.parametrize(
    "damage,code", [("not a database", errors.EXIT_BAD_INSTALLATION), ("unknown column", errors.EXIT_UNKNOWN_SCHEMA)]
)
def test_the_binary_refuses_bad_input_and_changes_nothing(binary, install, damage, code):
    root = install(4)
    if damage == "not a database":
        for suffix in ("-wal", "-shm"):
            Path(f"{database(root)}{suffix}").unlink(missing_ok=True)
        database(root).write_bytes(b"definitely not sqlite")
    else:
        with closing(apsw.Connection(str(database(root)))) as conn:
            conn.execute('ALTER TABLE employees ADD COLUMN "badge" TEXT')
    before = file_digests(root)
    done = run(binary, "--yes", "--data-dir", str(root))
    assert done.returncode == code
    assert "REFUSED" in done.stderr and "Traceback" not in done.stderr
    assert file_digests(root) == before
