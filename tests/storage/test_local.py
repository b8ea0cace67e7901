"""What only the directory backend has to get right: the filesystem around it."""

from __future__ import annotations

import io
import re
import resource
import stat
import sys
from pathlib import Path

import pytest

from storage import (
    InvalidKey,
    LocalStorage,
    ObjectExists,
    ObjectNotFound,
    StorageUnavailable,
    from_url,
)
from tests.support.storage import MiB, PatternStream

CONTENT_TYPE = "application/octet-stream"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "objects"


@pytest.fixture
def store(root: Path) -> LocalStorage:
    return LocalStorage(root)


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory next to the root holding a file the store must never read, write or remove."""
    directory = tmp_path / "outside"
    directory.mkdir()
    (directory / "secret").write_bytes(b"not yours")
    return directory


def all_files(directory: Path) -> list[str]:
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*") if not p.is_dir())


def test_a_symlinked_directory_pointing_outside_the_root_is_refused(
    store: LocalStorage, root: Path, outside: Path
) -> None:
    (root / "escape").symlink_to(outside, target_is_directory=True)

    with pytest.raises(InvalidKey):
        store.open("escape/secret")
    with pytest.raises(InvalidKey):
        store.put("escape/planted", io.BytesIO(b"planted"), content_type=CONTENT_TYPE)
    with pytest.raises(InvalidKey):
        store.delete("escape/secret")
    with pytest.raises(InvalidKey):
        store.exists("escape/secret")
    with pytest.raises(InvalidKey):
        list(store.keys("escape/"))

    assert all_files(outside) == ["secret"]
    assert (outside / "secret").read_bytes() == b"not yours"


def test_a_symlinked_file_pointing_outside_the_root_is_refused(
    store: LocalStorage, root: Path, outside: Path
) -> None:
    (root / "link").symlink_to(outside / "secret")

    with pytest.raises(InvalidKey):
        store.open("link")
    with pytest.raises(InvalidKey):
        store.size("link")
    with pytest.raises(InvalidKey):
        store.delete("link")

    assert (outside / "secret").read_bytes() == b"not yours"
    # Never listed either: keys() only reports regular files the store could have written.
    assert list(store.keys()) == []


def test_stored_files_and_directories_are_private_to_the_owner(tmp_path: Path) -> None:
    root = tmp_path / "fresh" / "objects"
    store = LocalStorage(root)

    store.put("images/org/ref/one", io.BytesIO(b"x"), content_type=CONTENT_TYPE)

    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    for directory in ["images", "images/org", "images/org/ref"]:
        assert stat.S_IMODE((root / directory).stat().st_mode) == 0o700
    assert stat.S_IMODE((root / "images/org/ref/one").stat().st_mode) == 0o600


def test_temporary_files_never_appear_in_keys(store: LocalStorage, root: Path) -> None:
    seen_mid_upload: list[list[str]] = []
    scratch_files: list[list[str]] = []

    def look() -> None:
        seen_mid_upload.append(sorted(store.keys()))
        scratch_files.append(all_files(root))

    store.put("done", io.BytesIO(b"earlier"), content_type=CONTENT_TYPE)
    uploading = PatternStream(3 * MiB, trigger_at=MiB, on_position=look)
    store.put("uploading", uploading, content_type=CONTENT_TYPE)
    # A scratch file left behind by a crash is not an object either.
    (root / ".~tmp-crashed").write_bytes(b"partial")

    # While the upload ran, its bytes existed on disk only under a scratch name.
    assert seen_mid_upload == [["done"]]
    assert len(scratch_files[0]) == 2
    assert sorted(store.keys()) == ["done", "uploading"]


def test_a_failed_put_leaves_no_scratch_file_behind(store: LocalStorage, root: Path) -> None:
    with pytest.raises(RuntimeError):
        store.put("broken", _ExplodingStream(), content_type=CONTENT_TYPE)

    assert all_files(root) == []


class _ExplodingStream:
    def __init__(self) -> None:
        self._calls = 0

    def read(self, n: int = -1) -> bytes:
        self._calls += 1
        if self._calls > 2:
            raise RuntimeError("connection reset by peer")
        return b"z" * min(n, 1000)


def test_url_is_none_because_files_are_served_by_the_application(store: LocalStorage) -> None:
    store.put("served", io.BytesIO(b"x"), content_type=CONTENT_TYPE)

    assert store.url("served") is None
    assert store.url("served", expires_in=60, filename="image.png", content_type="image/png") is None
    with pytest.raises(ValueError, match="300"):
        store.url("served", expires_in=301)


def test_a_key_naming_a_directory_of_other_keys_is_a_conflict_not_an_object(store: LocalStorage) -> None:
    store.put("ref/1/a", io.BytesIO(b"x"), content_type=CONTENT_TYPE)

    with pytest.raises(ObjectExists):
        store.put("ref/1", io.BytesIO(b"y"), content_type=CONTENT_TYPE)
    with pytest.raises(ObjectExists):
        store.put("ref/1/a/b", io.BytesIO(b"y"), content_type=CONTENT_TYPE)
    assert not store.exists("ref/1")
    with pytest.raises(ObjectNotFound):
        store.open("ref/1")
    store.delete("ref/1")
    assert store.exists("ref/1/a")


def test_a_segment_longer_than_a_file_name_may_be_is_an_invalid_key(store: LocalStorage) -> None:
    with pytest.raises(InvalidKey, match="255"):
        store.put("a" * 256, io.BytesIO(b"x"), content_type=CONTENT_TYPE)


def test_check_reports_a_missing_root_as_unavailable(store: LocalStorage, root: Path) -> None:
    store.check()
    root.rmdir()

    with pytest.raises(StorageUnavailable):
        store.check()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="relies on RLIMIT_FSIZE semantics")
def test_a_full_disk_is_reported_as_unavailable_and_leaves_nothing(store: LocalStorage, root: Path) -> None:
    # A file size limit makes writes fail with EFBIG exactly as a full disk fails with ENOSPC,
    # without needing a real full filesystem. Python ignores SIGXFSZ, so the write just errors.
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (MiB, hard))
    try:
        with pytest.raises(StorageUnavailable):
            store.put("too-big", PatternStream(3 * MiB), content_type=CONTENT_TYPE)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))

    assert all_files(root) == []


def test_from_url_builds_local_storage_from_an_absolute_file_url(tmp_path: Path) -> None:
    store = from_url((tmp_path / "with space" / "objects").as_uri())

    assert isinstance(store, LocalStorage)
    assert store.backend == "local"
    assert store.root == (tmp_path / "with space" / "objects").resolve()
    assert store.root.is_dir()


@pytest.mark.parametrize("url", ["file://relative/path", "file:relative/path", "file:", "file://"])
def test_from_url_rejects_file_urls_without_an_absolute_path(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # were anything created, it would land here
    with pytest.raises(ValueError, match="absolute"):
        from_url(url)
    assert list(tmp_path.iterdir()) == []


def test_from_url_rejects_query_parameters_on_file_urls(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="mode"):
        from_url(f"{tmp_path.as_uri()}?mode=0777")


@pytest.mark.parametrize("url", ["ftp://host/path", "/var/lib/objects", "gs://bucket"])
def test_from_url_rejects_unknown_schemes_by_name(url: str) -> None:
    scheme = url.split("://")[0] if "://" in url else "(none)"
    with pytest.raises(ValueError, match=re.escape(f"'{scheme}'")):
        from_url(url)
