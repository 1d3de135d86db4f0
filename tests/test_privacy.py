"""Backups are readable by their owner only: mode bits on POSIX, a protected owner-only DACL on
Windows; a drive that keeps no permissions does not stop the backup, it is reported."""

from __future__ import annotations

import json
import logging
import os
import re
import stat
from pathlib import Path

import pytest

from upgrader import privacy
from upgrader.installation import locate
from upgrader.privacy import is_private, make_private, privacy_problem
from upgrader.upgrade import upgrade

posix_only = pytest.mark.skipif(os.name != "posix", reason="mode bits are POSIX")
windows_only = pytest.mark.skipif(os.name != "nt", reason="ACLs are Windows")


def test_the_windows_acl_is_protected_and_names_the_user_alone():
    sid = "S-1-5-21-1-2-3-1001"
    assert privacy.owner_only_sddl(sid, folder=True) == f"D:P(A;OICI;FA;;;{sid})"
    assert privacy.owner_only_sddl(sid, folder=False) == f"D:P(A;;FA;;;{sid})"


@posix_only
def test_on_posix_a_private_folder_is_0700_and_a_private_file_0600(tmp_path):
    folder, file = tmp_path / "backup", tmp_path / "backup" / "data.db"
    folder.mkdir(mode=0o755)
    os.chmod(folder, 0o755)
    assert privacy_problem(folder) and not is_private(folder)
    assert make_private(folder) is None
    file.write_bytes(b"x")
    os.chmod(file, 0o644)
    assert "0644" in privacy_problem(file)
    assert make_private(file) is None
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700 and stat.S_IMODE(file.stat().st_mode) == 0o600
    assert is_private(folder) and is_private(file)


def test_a_missing_path_is_not_private_and_raises_nothing(tmp_path):
    assert make_private(tmp_path / "nowhere")
    assert privacy_problem(tmp_path / "nowhere")


class _OsWith:
    """The os module as privacy.py sees it, with another chmod (everyone else keeps the real one)."""

    def __init__(self, chmod) -> None:
        self.chmod = chmod

    def __getattr__(self, name):
        return getattr(os, name)


def _upgrade_logging(root: Path, caplog):
    with caplog.at_level(logging.WARNING, logger="upgrader"):
        return upgrade(locate(root, environ={}))


@posix_only
def test_a_drive_that_refuses_permissions_does_not_stop_the_backup(install, caplog, monkeypatch):
    """Like a FAT32 stick mounted without `quiet`: chmod fails with EPERM."""

    def refuse(path, mode):
        raise PermissionError(1, "Operation not permitted", str(path))

    monkeypatch.setattr(privacy, "os", _OsWith(refuse))
    result = _upgrade_logging(install(4), caplog)
    assert result.backup.privacy_problem == "Operation not permitted"
    assert "could not be made readable by its owner only" in caplog.text
    assert result.backup.folder.is_dir() and (result.backup.folder / "manifest.json").is_file()


@posix_only
def test_a_drive_that_ignores_permissions_is_found_out(install, caplog, monkeypatch):
    """Like a FAT32 stick mounted with `quiet`: chmod succeeds and changes nothing."""
    monkeypatch.setattr(privacy, "os", _OsWith(lambda path, mode: None))
    old = os.umask(0o022)
    try:
        result = _upgrade_logging(install(4), caplog)
    finally:
        os.umask(old)
    assert "permissions are 0644" in result.backup.privacy_problem
    assert "could not be made readable by its owner only" in caplog.text


def test_a_private_backup_reports_no_problem(install, caplog):
    result = _upgrade_logging(install(5), caplog)
    assert result.backup.privacy_problem is None
    assert "owner only" not in caplog.text
    for path in [result.backup.folder, *result.backup.folder.iterdir()]:
        assert privacy_problem(path) is None, path


# --- Windows: run by the Windows lane (.ci/windows, under Wine) and on Windows ---------------------


def _under_wine() -> bool:
    import ctypes

    return hasattr(ctypes.WinDLL("ntdll"), "wine_get_version")


WINE = os.name == "nt" and _under_wine()
# Wine keeps no ACLs: SetFileSecurityW succeeds and sets Unix mode bits from the DACL, and
# GetFileSecurityW shows a DACL made from those bits (never protected, SYSTEM always in it,
# nothing inherited from the folder).


def _aces(sddl: str) -> list[str]:
    return re.findall(r"\(([^)]*)\)", sddl)


def _only_the_user(sddl: str, sid: str, flags: str) -> bool:
    if WINE:
        return set(_aces(sddl)) <= {f"A;{flags};FA;;;{sid}", f"A;{flags};FA;;;SY"} and f"A;{flags};FA;;;{sid}" in sddl
    return sddl.startswith("D:P") and _aces(sddl) == [f"A;{flags};FA;;;{sid}"]


@windows_only
def test_on_windows_a_private_folder_has_a_protected_dacl_for_the_user_alone(tmp_path):
    sid = privacy.windows_user_sid_string()
    assert sid.startswith("S-1-")
    folder = tmp_path / "backup"
    folder.mkdir()
    assert make_private(folder) is None
    assert _only_the_user(privacy.windows_sddl(folder), sid, "OICI"), privacy.windows_sddl(folder)
    inside = folder / "data.db"
    inside.write_bytes(b"written after the folder was made private")
    if not WINE:
        assert privacy_problem(inside) is None, f"inherited from the folder: {privacy.windows_sddl(inside)}"
    assert make_private(inside) is None
    assert _only_the_user(privacy.windows_sddl(inside), sid, ""), privacy.windows_sddl(inside)
    assert inside.read_bytes().startswith(b"written"), "the user can still read it"
    inside.unlink()
    folder.rmdir()


@windows_only
def test_on_windows_an_ace_for_anyone_else_is_found(tmp_path):
    import ctypes

    sid = privacy.windows_user_sid_string()
    folder = tmp_path / "shared"
    folder.mkdir()
    advapi32, kernel32 = privacy._api()
    descriptor = ctypes.c_void_p()
    sddl = f"D:P(A;OICI;FA;;;{sid})(A;OICI;FR;;;WD)"  # and Everyone may read
    assert advapi32.ConvertStringSecurityDescriptorToSecurityDescriptorW(sddl, 1, ctypes.byref(descriptor), None)
    try:
        assert advapi32.SetFileSecurityW(str(folder), 4, descriptor)
    finally:
        kernel32.LocalFree(descriptor)
    assert "other users or groups" in privacy_problem(folder), privacy.windows_sddl(folder)
    assert make_private(folder) is None
    assert is_private(folder)


@windows_only
def test_on_windows_a_drive_without_acls_does_not_stop_the_backup(install, caplog, monkeypatch):
    def unsupported(path):
        raise OSError(None, "The request is not supported.", str(path), 50)

    monkeypatch.setattr(privacy, "_windows_set_owner_only", unsupported)
    result = _upgrade_logging(install(4), caplog)
    assert "keeps no permissions" in result.backup.privacy_problem
    assert "could not be made readable by its owner only" in caplog.text


@windows_only
def test_on_windows_every_file_of_a_backup_is_private(install, caplog):
    result = _upgrade_logging(install(3), caplog)
    sid = privacy.windows_user_sid_string()
    assert result.backup.privacy_problem is None
    assert _only_the_user(privacy.windows_sddl(result.backup.folder), sid, "OICI")
    for path in result.backup.folder.iterdir():
        assert _only_the_user(privacy.windows_sddl(path), sid, ""), (path.name, privacy.windows_sddl(path))


@posix_only
def test_the_report_and_json_say_when_a_backup_is_not_private(install, monkeypatch, capsys):
    from upgrader.cli import main

    def refuse(path, mode):
        raise PermissionError(1, "Operation not permitted", str(path))

    monkeypatch.setattr(privacy, "os", _OsWith(refuse))
    root = install(4)
    assert main(["--yes", "--data-dir", str(root)]) == 0
    assert "Not private: Operation not permitted" in capsys.readouterr().out
    assert main(["--yes", "--json", "--data-dir", str(install(5, name="json"))]) == 0
    assert json.loads(capsys.readouterr().out)["backup_private"] is False
