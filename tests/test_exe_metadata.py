"""What the Windows executable says about itself in Explorer's Properties and in SmartScreen: its
version resource and its icon, both made at build time (build/exe_metadata.py, build/make_icon.py)."""

from __future__ import annotations

import importlib.util
import struct
import sys
from pathlib import Path

import pytest
from test_binary import ROOT, _sources_newer_than, binary, builder  # noqa: F401  (binary: the fixture)

from upgrader import __version__


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"wems_{name}", ROOT / "build" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


exe_metadata = _load("exe_metadata")
make_icon = _load("make_icon")


def _icon_sizes(ico: bytes) -> list[int]:
    _reserved, kind, count = struct.unpack_from("<HHH", ico)
    assert kind == 1
    return [struct.unpack_from("<B", ico, 6 + 16 * i)[0] or 256 for i in range(count)]


def test_the_committed_icon_is_what_its_script_draws():
    committed = exe_metadata.ICON.read_bytes()
    assert committed == make_icon.ico_bytes(), "run: python build/make_icon.py"
    assert _icon_sizes(committed) == [16, 32, 48]


def test_the_version_file_names_the_upgrader_and_the_target_release(catalog):
    target = str(catalog.latest.last_release)
    assert exe_metadata.versions() == (__version__, target)
    text = exe_metadata.version_file_text(*exe_metadata.versions())
    assert "StringStruct('ProductName', 'wems-upgrade')" in text
    assert f"StringStruct('ProductVersion', '{target}')" in text
    assert f"StringStruct('FileVersion', '{__version__}')" in text
    assert f"prodvers={exe_metadata._fixed(target)}" in text
    assert exe_metadata._fixed("2.3.2") == (2, 3, 2, 0) and exe_metadata._fixed("0.2.0.dev1") == (0, 2, 0, 0)


@pytest.fixture
def windows_exe(request) -> Path:
    """build/out/wems-upgrade.exe: built (or rebuilt) by test_binary's fixture on Windows; elsewhere
    the one a Windows build (the Wine lane) left, if it is up to date."""
    if sys.platform == "win32":
        return request.getfixturevalue("binary")
    path = builder.OUT / "wems-upgrade.exe"
    if not path.exists():
        pytest.skip("no Windows executable built: build/build.py makes build/out/wems-upgrade.exe on Windows")
    if _sources_newer_than(path):
        pytest.skip("build/out/wems-upgrade.exe is older than the sources: rebuild it on Windows")
    return path


def _version_resource(path: Path) -> tuple[dict[str, str], tuple[int, ...], tuple[int, ...], list[int]]:
    """(strings, file version, product version, icon sizes) of a PE file's resources."""
    pefile = pytest.importorskip("pefile", reason="pefile (a PyInstaller dependency on Windows) reads PE resources")
    pe = pefile.PE(str(path))
    try:
        strings = {}
        for info in getattr(pe, "FileInfo", []):
            for entry in info:
                for table in getattr(entry, "StringTable", []):
                    strings.update({k.decode("utf-8"): v.decode("utf-8") for k, v in table.entries.items()})
        assert hasattr(pe, "VS_FIXEDFILEINFO"), f"{path.name} has no version resource"
        fixed = pe.VS_FIXEDFILEINFO[0]

        def four(ms: int, ls: int) -> tuple[int, ...]:
            return ms >> 16, ms & 0xFFFF, ls >> 16, ls & 0xFFFF

        icons = []
        for kind in pe.DIRECTORY_ENTRY_RESOURCE.entries:
            if kind.id == pefile.RESOURCE_TYPE["RT_ICON"]:
                for icon in kind.directory.entries:
                    data_entry = icon.directory.entries[0].data.struct
                    data = pe.get_data(data_entry.OffsetToData, data_entry.Size)
                    icons.append(
                        struct.unpack_from("<i", data, 4)[0]
                        if data[:4] != b"\x89PNG"
                        else struct.unpack_from(">I", data, 16)[0]
                    )
        return (
            strings,
            four(fixed.FileVersionMS, fixed.FileVersionLS),
            four(fixed.ProductVersionMS, fixed.ProductVersionLS),
            sorted(icons),
        )
    finally:
        pe.close()


@pytest.mark.binary
def test_the_exe_carries_its_version_resource_and_icon(windows_exe, catalog):
    strings, file_version, product_version, icons = _version_resource(windows_exe)
    target = str(catalog.latest.last_release)
    assert strings["ProductName"] == "wems-upgrade"
    assert strings["ProductVersion"] == target
    assert strings["FileVersion"] == __version__
    assert strings["FileDescription"] and strings["CompanyName"] and strings["LegalCopyright"]
    assert strings["OriginalFilename"] == "wems-upgrade.exe"
    assert product_version == exe_metadata._fixed(target)
    assert file_version == exe_metadata._fixed(__version__)
    assert icons == [16, 32, 48]
