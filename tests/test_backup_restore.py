"""Backups before every upgrade, verified; restore puts a site back and can itself be undone."""

from __future__ import annotations

import json
import os
import stat
from contextlib import closing
from pathlib import Path

import pytest
from support import GENERATIONS, content, database, execute, file_digests, query, table_rows

from upgrader import errors
from upgrader.backup import list_backups, sha256_file, verify_backup
from upgrader.cli import main
from upgrader.installation import locate
from upgrader.restore import restore
from upgrader.upgrade import upgrade


def backups_of(root: Path) -> list[Path]:
    return sorted(p for p in (root / "backups").iterdir() if p.is_dir())


def test_an_upgrade_first_saves_a_verified_private_backup(install):
    root = install(3)
    counts = {t: len(r) for t, r in table_rows(root).items()}
    config_bytes = (root / "config.json").read_bytes()
    result = upgrade(locate(root, environ={}))
    folder = result.backup.folder
    assert folder.parent == root / "backups" and folder.name.startswith("before_upgrade_g8_")
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["generation_before"] == "g3" and manifest["target"] == "g8"
    assert manifest["upgrader_version"] and manifest["created_at"]
    assert manifest["row_counts"] == counts, "rows still in the -wal file are in the backup too"
    assert {f["name"] for f in manifest["files"]} == {
        "employee_manager.db",
        "config.json",
    }
    assert (folder / "config.json").read_bytes() == config_bytes
    if os.name == "posix":
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        assert {stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()} == {0o600}
    assert verify_backup(folder).manifest == manifest
    assert not list(folder.glob("*-wal")), "a backup is one self-contained database file"


def test_backups_can_go_to_another_folder(install, tmp_path):
    root = install(6)
    elsewhere = tmp_path / "usb-stick" / "wems"
    assert main(["--yes", "--data-dir", str(root), "--backup-dir", str(elsewhere)]) == 0
    assert len(list(elsewhere.iterdir())) == 1
    assert not (root / "backups").exists() or not any((root / "backups").iterdir())


def test_no_backup_needs_a_confirmation(install, capsys):
    root = install(2)
    before = file_digests(root)
    assert main(["--data-dir", str(root), "--no-backup"]) == errors.EXIT_USAGE
    assert "WITHOUT a backup" in capsys.readouterr().err
    assert file_digests(root) == before
    assert main(["--yes", "--data-dir", str(root), "--no-backup", "--yes"]) == 0
    assert "No backup was made" in capsys.readouterr().out
    assert not any((root / "backups").iterdir())


def test_list_backups_shows_date_version_and_size(install, capsys):
    root = install(4)
    main(["--yes", "--data-dir", str(root)])
    capsys.readouterr()
    assert main(["--yes", "--data-dir", str(root), "--list-backups"]) == 0
    out = capsys.readouterr().out
    assert "before_upgrade_g8" in out and "before: g4" in out and "KB" in out


@pytest.mark.parametrize("generation", GENERATIONS[:-1])
def test_restore_puts_every_generation_back_as_it_was(install, generation):
    root = install(generation)
    original, config = content(root), (root / "config.json" if generation < 5 else root / "config.yaml")
    config_bytes = config.read_bytes()
    result = upgrade(locate(root, environ={}))
    back = restore(locate(root, environ={}), result.backup.folder)
    assert content(root) == original
    assert config.read_bytes() == config_bytes
    assert query(root, "PRAGMA integrity_check") == [("ok",)]
    assert not Path(f"{database(root)}-wal").exists()
    assert back.saved and back.saved.manifest["kind"] == "before_restore"
    upgraded_again = upgrade(locate(root, environ={}))
    assert upgraded_again.status == "upgraded"


def test_a_restore_can_itself_be_undone(install):
    root = install(5)
    result = upgrade(locate(root, environ={}))
    upgraded = content(root)
    back = restore(locate(root, environ={}), result.backup.folder)
    restore(locate(root, environ={}), back.saved.folder)
    assert content(root) == upgraded


def test_restore_removes_a_config_file_the_backup_did_not_have(install):
    root = install(2)
    result = upgrade(locate(root, environ={}))
    (root / "config.yaml").write_text("alerts:\n  warning_days: 30\n", encoding="utf-8")
    restore(locate(root, environ={}), result.backup.folder)
    assert not (root / "config.yaml").exists()
    assert (root / "config.json").exists()


def test_restore_replaces_a_damaged_database_and_keeps_the_damaged_files(install):
    root = install(7)
    result = upgrade(locate(root, environ={}))
    database(root).write_bytes(b"SQLite format 3\x00" + b"\x00" * 100)
    back = restore(locate(root, environ={}), result.backup.folder)
    assert back.saved is None
    assert query(root, "SELECT count(*) FROM employees")[0][0] > 0
    assert len(list((root / "data").glob("*.damaged-*"))) == 1


TAMPERING = {
    "database changed": lambda f: f.joinpath("employee_manager.db").open("r+b").write(b"X"),
    "manifest edited": lambda f: f.joinpath("manifest.json").write_text(
        f.joinpath("manifest.json").read_text(encoding="utf-8").replace('"size": ', '"size": 1'), encoding="utf-8"
    ),
    "file missing": lambda f: f.joinpath("config.json").unlink(),
    "not a backup": lambda f: f.joinpath("manifest.json").unlink(),
    "manifest garbage": lambda f: f.joinpath("manifest.json").write_text("{not json", encoding="utf-8"),
}


@pytest.mark.parametrize("how", TAMPERING)
def test_a_tampered_or_foreign_backup_is_refused(install, capsys, how):
    root = install(2)
    result = upgrade(locate(root, environ={}))
    TAMPERING[how](result.backup.folder)
    before = file_digests(root)
    code = main(["--yes", "--data-dir", str(root), "--restore", str(result.backup.folder), "--yes"])
    assert code == errors.EXIT_BAD_BACKUP
    assert "REFUSED" in capsys.readouterr().err
    assert file_digests(root) == before


def test_a_backup_whose_rows_differ_from_its_manifest_is_refused(install):
    root = install(2)
    result = upgrade(locate(root, environ={}))
    manifest_path = result.backup.folder / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest["row_counts"]["employees"] += 1
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(errors.BadBackup, match="rows"):
        verify_backup(result.backup.folder)


def test_restore_without_a_name_in_a_script_asks_for_one(install, capsys):
    root = install(2)
    upgrade(locate(root, environ={}))
    assert main(["--yes", "--data-dir", str(root), "--restore"]) == errors.EXIT_USAGE
    assert "Name the backup" in capsys.readouterr().err


def test_restore_refuses_while_the_app_is_open(install, capsys):
    from test_in_use import add_lock

    root = install(4)
    result = upgrade(locate(root, environ={}))
    add_lock(root, minutes_ago=0)
    before = file_digests(root)
    assert (
        main(["--yes", "--data-dir", str(root), "--restore", str(result.backup.folder), "--yes"]) == errors.EXIT_IN_USE
    )
    assert file_digests(root) == before


def test_list_backups_reports_unreadable_ones(install):
    root = install(2)
    upgrade(locate(root, environ={}))
    broken = root / "backups" / "before_upgrade_g8_broken"
    broken.mkdir()
    (broken / "manifest.json").write_text("[]", encoding="utf-8")
    found = list_backups(root / "backups")
    assert any(isinstance(item, tuple) and item[0] == broken for item in found)


def test_restore_over_a_damaged_database_keeps_the_current_settings_aside(install):
    root = install(7)
    result = upgrade(locate(root, environ={}))
    (root / "config.yaml").write_text("alerts:\n  critical_days: 3\n  warning_days: 9\n", encoding="utf-8")
    (root / "config.json").write_text('{"note": "hand made"}', encoding="utf-8")
    database(root).write_bytes(b"SQLite format 3\x00" + b"\x00" * 100)
    restore(locate(root, environ={}), result.backup.folder)
    kept = {
        p.name.split(".before-restore-")[0]: p.read_text(encoding="utf-8")
        for p in root.glob("config.*.before-restore-*")
    }
    assert "critical_days: 3" in kept["config.yaml"] and "hand made" in kept["config.json"]


def test_a_manifest_naming_another_file_as_the_database_is_refused(install):
    root = install(3)
    result = upgrade(locate(root, environ={}))
    folder = result.backup.folder
    (folder / "other.db").write_bytes(b"this is not a database")
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    entry = next(f for f in manifest["files"] if f["role"] == "database")
    entry.update(name="other.db", size=22, sha256=sha256_file(folder / "other.db"))
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(errors.BadBackup):
        verify_backup(folder)


def test_a_manifest_with_garbage_files_is_refused_and_listed_as_unreadable(install, capsys):
    root = install(3)
    result = upgrade(locate(root, environ={}))
    upgrade(locate(root, environ={}), "g8")
    manifest = json.loads((result.backup.folder / "manifest.json").read_text(encoding="utf-8"))
    manifest["files"] = "garbage"
    (result.backup.folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    assert main(["--yes", "--data-dir", str(root), "--restore", str(result.backup.folder)]) == errors.EXIT_BAD_BACKUP
    assert main(["--data-dir", str(root), "--list-backups"]) == 0
    assert "unreadable" in capsys.readouterr().out


def test_a_backup_from_another_installation_needs_a_flag(install, capsys):
    lyon, paris = install(4, "lyon"), install(4, "paris")
    backup = upgrade(locate(lyon, environ={})).backup.folder
    before = file_digests(paris)
    assert main(["--yes", "--data-dir", str(paris), "--restore", str(backup)]) == errors.EXIT_BAD_BACKUP
    assert "another installation" in capsys.readouterr().err
    assert file_digests(paris) == before
    assert main(["--yes", "--data-dir", str(paris), "--restore", str(backup), "--from-other-installation"]) == 0


@pytest.mark.skipif(os.name != "posix", reason="POSIX modes")
def test_restore_and_conversion_keep_file_modes(install):
    root = install(2)
    os.chmod(root / "config.json", 0o600)
    os.chmod(database(root), 0o640)
    result = upgrade(locate(root, environ={}))
    assert stat.S_IMODE((root / "config.yaml").stat().st_mode) == 0o600
    restore(locate(root, environ={}), result.backup.folder)
    assert stat.S_IMODE(database(root).stat().st_mode) == 0o640


def test_a_restore_whose_commit_cannot_be_written_is_undone(install, capsys, monkeypatch):
    root = install(3)
    result = upgrade(locate(root, environ={}))
    upgraded = content(root)
    from upgrader import journal

    real_save = journal.FileSwap._save

    def failing_save(self, state):
        if state == "committed":
            raise OSError(28, "No space left on device")
        return real_save(self, state)

    monkeypatch.setattr(journal.FileSwap, "_save", failing_save)
    assert main(["--yes", "--data-dir", str(root), "--restore", str(result.backup.folder)]) == errors.EXIT_ROLLED_BACK
    assert "restore was undone" in capsys.readouterr().err
    assert content(root) == upgraded
    assert not [p for p in (root / "data").iterdir() if "wems-upgrade" in p.name]


def test_a_copy_torn_by_a_concurrent_writer_is_discarded_with_its_backup(install, capsys, monkeypatch):
    root = install(6)
    from upgrader import upgrade as upgrade_module

    real_copy = upgrade_module.copy_file

    def copy_while_the_app_writes(source, dest, progress=None):
        digest = real_copy(source, dest, progress)
        execute(root, "UPDATE employees SET phone = '0' WHERE rowid = 1")
        return digest

    monkeypatch.setattr(upgrade_module, "copy_file", copy_while_the_app_writes)
    assert main(["--yes", "--data-dir", str(root)]) == errors.EXIT_IN_USE
    assert "changed while it was being copied" in capsys.readouterr().err
    assert query(root, "SELECT phone FROM employees WHERE rowid = 1") == [("0",)]
    assert not (root / "backups").exists() or not any((root / "backups").iterdir())


def test_the_state_saved_before_a_restore_names_its_generation(install):
    root = install(4)
    result = upgrade(locate(root, environ={}))
    back = restore(locate(root, environ={}), result.backup.folder)
    assert back.saved.manifest["generation_before"] == "g8"


def test_every_settings_file_is_backed_up_listed_and_restored(install):
    root = install(7)
    others = [root / "config" / "backup_config.json", root / "config" / "alert_settings.json"]
    originals = [p.read_bytes() for p in others]
    result = upgrade(locate(root, environ={}))
    listed = {f["name"] for f in result.backup.manifest["files"] if f["role"] == "config"}
    assert {"config/backup_config.json", "config/alert_settings.json"} <= listed
    for path in others:
        path.write_text("{}", encoding="utf-8")
    restore(locate(root, environ={}), result.backup.folder)
    assert [p.read_bytes() for p in others] == originals


def test_the_original_file_becomes_the_backup_and_reads_back_as_it_was(install):
    """One copy: the backup's database is the original file itself (kept by hard link at the swap).
    On POSIX its header is then retired; its SHA-256, verify and restore see the original bytes."""
    from upgrader.backup import open_backup_database
    from upgrader.snapshot import RETIRED_HEADER, SQLITE_HEADER

    root = install(6)
    original, inode = content(root), database(root).stat().st_ino
    stages = set()
    result = upgrade(locate(root, environ={}), progress=lambda stage, done, total: stages.add(stage))
    saved = result.backup.folder / "employee_manager.db"
    assert "backup" not in stages and "copy" in stages, "one full copy: the work copy"
    assert saved.stat().st_ino == inode
    header = saved.read_bytes()[:16]
    assert header == (RETIRED_HEADER if os.name == "posix" else SQLITE_HEADER)
    entry = next(f for f in result.backup.manifest["files"] if f["role"] == "database")
    assert sha256_file(saved, database=True) == entry["sha256"]
    assert verify_backup(result.backup.folder).manifest == result.backup.manifest
    with closing(open_backup_database(saved)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert not (result.backup.folder / ".wems-upgrade-incomplete").exists()
    restore(locate(root, environ={}), result.backup.folder)
    assert content(root) == original
    assert database(root).read_bytes()[:16] == SQLITE_HEADER


def test_without_hard_links_to_the_backup_folder_the_backup_gets_its_own_verified_copy(install, monkeypatch):
    """Another volume (or FAT): a second copy, with its own progress stage; the aside beside the database goes."""
    from upgrader import backup as backup_module

    monkeypatch.setattr(backup_module, "_can_link", lambda *a: False)
    root = install(3)
    original, inode = content(root), database(root).stat().st_ino
    stages = []
    result = upgrade(locate(root, environ={}), progress=lambda stage, done, total: stages.append(stage))
    saved = result.backup.folder / "employee_manager.db"
    assert stages.index("copy") < stages.index("backup")
    assert saved.stat().st_ino != inode and saved.read_bytes()[:16] == b"SQLite format 3\x00"
    assert verify_backup(result.backup.folder)
    assert not [p for p in database(root).parent.iterdir() if "wems-upgrade" in p.name]
    restore(locate(root, environ={}), result.backup.folder)
    assert content(root) == original


def test_a_failed_migration_leaves_the_rows_in_rollback_mode_and_no_backup_folder(install, monkeypatch, capsys):
    """The WAL was folded into the database before the copy: same rows, no -wal, journal_mode=delete;
    the app sets WAL again when it opens it. The backup folder begun for the run goes."""
    from upgrader import upgrade as upgrade_module

    root = install(3)
    original = content(root)
    assert Path(f"{database(root)}-wal").exists()

    def failing(*args, **kwargs):
        raise errors.UpgradeFailed("a check failed")

    monkeypatch.setattr(upgrade_module, "migrate_copy", failing)
    assert main(["--yes", "--data-dir", str(root)]) == errors.EXIT_ROLLED_BACK
    assert content(root) == original and not Path(f"{database(root)}-wal").exists()
    assert query(root, "PRAGMA journal_mode") == [("delete",)]
    assert not any((root / "backups").iterdir())
    assert not [p for p in database(root).parent.iterdir() if "wems-upgrade" in p.name]


def test_a_restore_over_a_swap_it_must_drop_keeps_the_original_it_replaced(install, capsys):
    """The original database becomes the backup by rename: when a restore drops a swap that can be
    neither finished nor undone, the half-made backup folder holding it must survive."""
    import subprocess
    import sys

    from upgrader.backup import create_backup
    from upgrader.journal import CRASH_ENV
    from upgrader.snapshot import open_database

    root = install(2)
    with closing(open_database(database(root))) as source:
        saved = create_backup(locate(root, environ={}), source, "before_upgrade_manual", {})
    env = dict(os.environ, **{CRASH_ENV: "placed_0"})
    subprocess.run(
        [sys.executable, "-m", "upgrader", "--data-dir", str(root), "--yes"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    (half,) = [f for f in backups_of(root) if f != saved.folder]
    original = half / "employee_manager.db"
    assert original.is_file()
    kept = sha256_file(original)
    execute(root, "CREATE TABLE written_after_the_crash (x)")
    (root / "config.json").write_text((root / "config.json").read_text(encoding="utf-8") + " ", encoding="utf-8")
    assert main(["--data-dir", str(root), "--restore", str(saved.folder), "--yes"]) == errors.EXIT_OK
    capsys.readouterr()
    assert original.is_file() and sha256_file(original) == kept
    assert any(isinstance(item, tuple) and item[0] == half for item in list_backups(root / "backups"))
    assert main(["--data-dir", str(root), "--yes"]) == errors.EXIT_OK
    assert original.is_file() and sha256_file(original) == kept


def test_an_unreadable_backup_is_listed_in_french_and_in_english_for_scripts(install, capsys):
    root = install(2)
    upgrade(locate(root, environ={}))
    broken = root / "backups" / "before_upgrade_g8_broken"
    broken.mkdir()
    (broken / "manifest.json").write_text("[]", encoding="utf-8")
    assert main(["--data-dir", str(root), "--list-backups", "--lang", "fr", "--no-update-check"]) == errors.EXIT_OK
    out = capsys.readouterr().out
    assert f"{broken} ne contient pas de sauvegarde que ce wems-upgrade sait lire." in out
    assert main(["--data-dir", str(root), "--list-backups", "--json", "--lang", "fr"]) == errors.EXIT_OK
    listed = json.loads(capsys.readouterr().out)["unusable"]
    assert listed == [{"folder": str(broken), "reason": f"{broken} does not hold a backup this wems-upgrade can read."}]


def test_a_refused_restore_speaks_french_and_logs_english(install, capsys):
    root = install(2)
    upgrade(locate(root, environ={}))
    other = install(2, name="other")
    upgrade(locate(other, environ={}))
    (foreign,) = backups_of(other)
    before = file_digests(root)
    args = ["--data-dir", str(root), "--restore", str(foreign), "--yes", "--lang", "fr"]
    assert main(args) == errors.EXIT_BAD_BACKUP
    err = capsys.readouterr().err
    assert f"Cette sauvegarde a été faite depuis une autre installation ({other}), pas depuis {root}." in err
    assert "ajoutez --from-other-installation" in err
    assert file_digests(root) == before
    log = sorted((root / "logs").glob("wems-upgrade-*.log"))[-1].read_text(encoding="utf-8")
    assert f"This backup was made from another installation ({other}), not from {root}." in log
