"""The one copy: made by the kernel where it can, else by read/write, hashed by a second thread."""

from __future__ import annotations

import errno
import hashlib
import os

import pytest

from upgrader import snapshot


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "source.db"
    path.write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    return path


def refuse(code: int):
    def refused(*_args, **_kwargs):
        raise OSError(code, os.strerror(code))

    return refused


@pytest.mark.parametrize("refused", [(), ("copy_file_range",), ("copy_file_range", "sendfile")])
def test_every_way_of_copying_gives_the_same_bytes_and_hash(source, tmp_path, monkeypatch, refused):
    for name in refused:
        monkeypatch.setattr(os, name, refuse(errno.EXDEV), raising=False)
    monkeypatch.setattr(snapshot, "COPY_BLOCK", 1024 * 1024)
    dest, seen = tmp_path / "copy.db", []
    digest = snapshot.copy_file(source, dest, lambda done, total: seen.append((done, total)))
    assert dest.read_bytes() == source.read_bytes()
    assert digest == hashlib.sha256(source.read_bytes()).hexdigest()
    assert seen[-1] == (source.stat().st_size,) * 2 and len(seen) >= 4


def test_a_kernel_copy_that_stops_short_gives_way_to_the_next(source, tmp_path, monkeypatch):
    monkeypatch.setattr(os, "copy_file_range", lambda *_a: 0, raising=False)
    dest = tmp_path / "copy.db"
    snapshot.copy_file(source, dest)
    assert dest.read_bytes() == source.read_bytes()


def test_a_disk_error_is_raised_not_worked_around(source, tmp_path, monkeypatch):
    monkeypatch.setattr(snapshot, "_KERNEL_COPIES", [refuse(errno.EIO)])
    with pytest.raises(OSError) as caught:
        snapshot.copy_file(source, tmp_path / "copy.db")
    assert caught.value.errno == errno.EIO


def test_an_error_of_the_hashing_thread_reaches_the_caller(source, tmp_path, monkeypatch):
    monkeypatch.setattr(snapshot, "HASH_BLOCK", -1)
    with pytest.raises(ValueError):
        snapshot.copy_file(source, tmp_path / "copy.db")
