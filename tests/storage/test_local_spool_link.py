"""An upload spooled on the store's filesystem becomes the stored object without its bytes being copied."""

from __future__ import annotations

import errno
import hashlib
import io
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

import pytest

from referral.http.uploads import HashingSpool
from storage import LocalStorage, ObjectExists, SizeMismatch, StorageUnavailable
from storage import local as local_module

CONTENT_TYPE = "application/dicom"
KEY = "images/org/referral/image"
DATA = os.urandom(3 * 1024 * 1024 + 17)


class CountingSpool(HashingSpool):
    """A spool that counts the bytes read back out of it."""

    bytes_read = 0

    def read(self, size: int = -1) -> bytes:
        data = super().read(size)
        self.bytes_read += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        count = super().readinto(buffer)
        self.bytes_read += count
        return count


_OPEN: list[HashingSpool] = []


def spooled(directory: Path | str | None, data: bytes = DATA) -> CountingSpool:
    spool = CountingSpool(limit=64 * 1024 * 1024, directory=str(directory) if directory is not None else None)
    _OPEN.append(spool)
    for start in range(0, len(data), 1 << 20):
        spool.write(data[start:start + (1 << 20)])
    spool.seek(0)
    return spool


@pytest.fixture(autouse=True)
def _close_spools() -> Any:
    yield
    while _OPEN:
        _OPEN.pop().close()


def inode(spool: HashingSpool) -> int:
    return os.fstat(spool._file.fileno()).st_ino


def leftovers(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.fixture
def store(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "objects")


@pytest.fixture
def spool_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "spool"
    folder.mkdir()
    return folder


def test_a_spool_on_the_store_filesystem_becomes_the_object_without_a_copy(store: LocalStorage, spool_dir: Path):
    spool = spooled(spool_dir)
    sha256 = hashlib.sha256(DATA).hexdigest()
    assert spool.sha256 == sha256

    stored = store.put(KEY, spool, content_type=CONTENT_TYPE, size=spool.size, sha256=spool.sha256)

    path = store.root / KEY
    assert (stored.key, stored.size, stored.sha256) == (KEY, len(DATA), sha256)
    assert os.stat(path).st_ino == inode(spool), "the spooled file itself is the object"
    assert spool.bytes_read == 0, "no byte was read back out of the spool"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert os.listdir(spool_dir) == [], "the spool file never had a name of its own"
    spool.close()
    with store.open(KEY) as stream:
        assert stream.read() == DATA, "the object outlives the spool, byte for byte"
    assert leftovers(store.root) == [KEY]


def test_a_spool_handed_over_to_the_store_cannot_be_written_again(store: LocalStorage, spool_dir: Path):
    spool = spooled(spool_dir)
    store.put(KEY, spool, content_type=CONTENT_TYPE, size=spool.size, sha256=spool.sha256)

    with pytest.raises(ValueError, match="handed over"):
        spool.write(b"more")
    with store.open(KEY) as stream:
        assert stream.read() == DATA


def test_a_taken_key_is_still_refused_and_its_object_kept(store: LocalStorage, spool_dir: Path):
    first = spooled(spool_dir)
    store.put(KEY, first, content_type=CONTENT_TYPE, size=first.size, sha256=first.sha256)
    other = b"\x00" * 1000
    second = spooled(spool_dir, other)

    with pytest.raises(ObjectExists):
        store.put(KEY, second, content_type=CONTENT_TYPE, size=second.size, sha256=second.sha256)

    with store.open(KEY) as stream:
        assert stream.read() == DATA
    assert leftovers(store.root) == [KEY]


def test_a_concurrent_put_that_takes_the_key_first_wins(store: LocalStorage, spool_dir: Path,
                                                        monkeypatch: pytest.MonkeyPatch):
    # The key is free when put() looks, and taken by another writer just before the link: link() refuses.
    spool = spooled(spool_dir)
    real_link = os.link

    def racing_link(src: Any, dst: Any, **kwargs: Any) -> None:
        (store.root / KEY).write_bytes(b"the other writer's object")
        real_link(src, dst, **kwargs)

    monkeypatch.setattr(local_module.os, "link", racing_link)
    with pytest.raises(ObjectExists):
        store.put(KEY, spool, content_type=CONTENT_TYPE, size=spool.size, sha256=spool.sha256)
    assert (store.root / KEY).read_bytes() == b"the other writer's object"


@pytest.mark.parametrize("why", ["no-digest", "not-a-spool", "spool-file-without-a-name-to-give"])
def test_the_bytes_are_copied_when_the_spool_cannot_be_linked(store: LocalStorage, spool_dir: Path, why: str):
    if why == "no-digest":
        # Without the digest computed while spooling, the store must hash the bytes as it copies them.
        stream: Any = spooled(spool_dir)
        stored = store.put(KEY, stream, content_type=CONTENT_TYPE, size=stream.size)
    elif why == "not-a-spool":
        stream = io.BytesIO(DATA)
        stored = store.put(KEY, stream, content_type=CONTENT_TYPE, size=len(DATA),
                           sha256=hashlib.sha256(DATA).hexdigest())
    else:
        # tempfile.TemporaryFile opens with O_EXCL, which forbids ever linking the file.
        stream = spooled(spool_dir)
        stream._file.close()
        stream._file = tempfile.TemporaryFile(dir=spool_dir)  # noqa: SIM115 - closed below
        stream._file.write(DATA)
        stream._file.seek(0)
        stored = store.put(KEY, stream, content_type=CONTENT_TYPE, size=len(DATA), sha256=stream.sha256)

    assert stored.sha256 == hashlib.sha256(DATA).hexdigest()
    with store.open(KEY) as copied:
        assert copied.read() == DATA
    if isinstance(stream, HashingSpool):
        assert os.stat(store.root / KEY).st_ino != inode(stream), "a copy, not the spool file"
        assert stream.bytes_read == len(DATA)
        stream.close()
    assert leftovers(store.root) == [KEY]


@pytest.mark.parametrize("where", ["another-device", "another-mount"])
def test_a_spool_on_another_filesystem_is_copied(store: LocalStorage, spool_dir: Path,
                                                 monkeypatch: pytest.MonkeyPatch, where: str):
    spool = spooled(spool_dir)
    if where == "another-device":
        # the store's folder reports another device than the spool file's, as a folder on another disk does
        real_stat = os.stat

        def other_device(target: Any, *args: Any, **kwargs: Any) -> Any:
            found = real_stat(target, *args, **kwargs)
            if Path(target) == (store.root / KEY).parent:
                fields = list(found)
                fields[stat.ST_DEV] += 1
                return os.stat_result(fields)
            return found

        monkeypatch.setattr(local_module.os, "stat", other_device)
    else:
        # the same device mounted twice: linking the spool file refuses with EXDEV (the copy's own link is left be)
        real_link = os.link

        def cross_device(source: Any, *args: Any, **kwargs: Any) -> None:
            if str(source).startswith("/proc/self/fd/"):
                raise OSError(errno.EXDEV, "Invalid cross-device link")
            real_link(source, *args, **kwargs)

        monkeypatch.setattr(local_module.os, "link", cross_device)

    stored = store.put(KEY, spool, content_type=CONTENT_TYPE, size=spool.size, sha256=spool.sha256)
    monkeypatch.undo()

    assert stored.sha256 == hashlib.sha256(DATA).hexdigest()
    assert spool.bytes_read == len(DATA), "copied"
    with store.open(KEY) as copied:
        assert copied.read() == DATA
    assert os.stat(store.root / KEY).st_ino != inode(spool), "a copy, not the spool file"
    spool.close()
    assert leftovers(store.root) == [KEY]


def test_a_spool_whose_size_is_not_the_announced_one_leaves_nothing(store: LocalStorage, spool_dir: Path):
    spool = spooled(spool_dir)

    with pytest.raises(SizeMismatch):
        store.put(KEY, spool, content_type=CONTENT_TYPE, size=spool.size + 1, sha256=spool.sha256)

    assert not store.exists(KEY)
    assert leftovers(store.root) == []


def test_a_folder_that_cannot_be_flushed_after_the_link_leaves_nothing(store: LocalStorage, spool_dir: Path,
                                                                      monkeypatch: pytest.MonkeyPatch):
    spool = spooled(spool_dir)
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(5, "Input/output error")
        real_fsync(fd)

    monkeypatch.setattr(local_module.os, "fsync", fsync)
    with pytest.raises(StorageUnavailable, match="EIO"):
        store.put(KEY, spool, content_type=CONTENT_TYPE, size=spool.size, sha256=spool.sha256)

    assert not store.exists(KEY)
    assert leftovers(store.root) == []


def test_the_spool_file_is_flushed_to_disk_before_it_gets_its_name(store: LocalStorage, spool_dir: Path,
                                                                   monkeypatch: pytest.MonkeyPatch):
    spool = spooled(spool_dir)
    events: list[str] = []
    real_fsync, real_link = os.fsync, os.link

    def fsync(fd: int) -> None:
        events.append("fsync-file" if stat.S_ISREG(os.fstat(fd).st_mode) else "fsync-folder")
        real_fsync(fd)

    def link(src: Any, dst: Any, **kwargs: Any) -> None:
        events.append("link")
        real_link(src, dst, **kwargs)

    monkeypatch.setattr(local_module.os, "fsync", fsync)
    monkeypatch.setattr(local_module.os, "link", link)
    store.put(KEY, spool, content_type=CONTENT_TYPE, size=spool.size, sha256=spool.sha256)

    assert events == ["fsync-file", "link", "fsync-folder"]
    assert spool.bytes_read == 0
