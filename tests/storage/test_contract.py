"""The behaviour every Storage backend promises, run unchanged against a directory and against S3.

The S3 side talks HTTP to a moto server (tests/support/s3server.py); nothing here is mocked, so what
passes here is what the application can rely on whichever backend it is configured with.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from storage import (
    InvalidKey,
    LocalStorage,
    ObjectExists,
    ObjectHead,
    ObjectNotFound,
    RangeReader,
    S3Storage,
    SizeMismatch,
    Storage,
    StorageError,
    StoredObject,
)
from tests.support.storage import CONTENT_TYPE, MiB, PatternStream, SourceError, pattern_digest, read_back

# Bigger than the S3 backend's 16 MiB multipart threshold and 8 MiB part size, so it takes the
# multipart path there and several write chunks locally.
LARGE = 20 * MiB


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    backend: Storage
    if request.param == "local":
        backend = LocalStorage(tmp_path / "objects")
    else:
        # A prefix, so every contract test also proves the prefix is applied and stripped.
        backend = S3Storage(request.getfixturevalue("s3_bucket"), prefix="contract/run")
    yield backend
    backend.close()


def test_put_then_open_returns_the_same_bytes_with_their_sha256_and_size(store: Storage) -> None:
    payload = b"\x00\x01 panoramic x-ray \xff" * 1000
    stored = store.put("images/a/b/one.bin", io.BytesIO(payload), content_type="image/png")

    assert stored == StoredObject(
        key="images/a/b/one.bin", size=len(payload), sha256=hashlib.sha256(payload).hexdigest()
    )
    with store.open("images/a/b/one.bin") as fh:
        assert fh.read() == payload
    assert store.size("images/a/b/one.bin") == len(payload)
    assert store.exists("images/a/b/one.bin")


def test_an_empty_stream_is_stored_as_an_empty_object(store: Storage) -> None:
    stored = store.put("empty", io.BytesIO(b""), content_type=CONTENT_TYPE, size=0)

    assert stored.size == 0
    assert stored.sha256 == hashlib.sha256(b"").hexdigest()
    with store.open("empty") as fh:
        assert fh.read() == b""


def test_a_stream_larger_than_one_multipart_part_round_trips_intact(store: Storage) -> None:
    stored = store.put("large/scan.dcm", PatternStream(LARGE), content_type="application/dicom", size=LARGE)

    expected = pattern_digest(LARGE)
    assert stored.size == LARGE
    assert stored.sha256 == expected
    assert read_back(store, "large/scan.dcm") == (LARGE, expected)
    assert store.size("large/scan.dcm") == LARGE


def test_open_streams_in_small_reads_and_closes(store: Storage) -> None:
    store.put("parts", io.BytesIO(b"0123456789" * 10), content_type=CONTENT_TYPE)

    fh = store.open("parts")
    pieces = [fh.read(7) for _ in range(16)]
    fh.close()

    assert b"".join(pieces) == b"0123456789" * 10
    assert pieces[-1] == b""
    assert fh.closed


def test_put_refuses_to_overwrite_an_existing_key_and_keeps_the_original(store: Storage) -> None:
    store.put("taken", io.BytesIO(b"original"), content_type=CONTENT_TYPE)
    replacement = io.BytesIO(b"replacement")

    with pytest.raises(ObjectExists):
        store.put("taken", replacement, content_type=CONTENT_TYPE)

    with store.open("taken") as fh:
        assert fh.read() == b"original"
    # Refused before any of the new stream was consumed.
    assert replacement.tell() == 0


@pytest.mark.parametrize("total", [4096, LARGE], ids=["single-request", "multipart"])
def test_a_put_that_loses_a_race_leaves_the_winners_object_intact(store: Storage, total: int) -> None:
    # The winner writes while the loser is already streaming, i.e. after the loser's up-front
    # existence check: only an atomic create-if-absent on the backend can still refuse the loser.
    def winner_writes() -> None:
        store.put("contested", io.BytesIO(b"winner"), content_type=CONTENT_TYPE)

    loser = PatternStream(total, trigger_at=total // 2, on_position=winner_writes)

    with pytest.raises(ObjectExists):
        store.put("contested", loser, content_type=CONTENT_TYPE)

    with store.open("contested") as fh:
        assert fh.read() == b"winner"
    assert list(store.keys()) == ["contested"]


def test_open_and_size_of_a_missing_key_raise_object_not_found(store: Storage) -> None:
    with pytest.raises(ObjectNotFound):
        store.open("missing/key")
    with pytest.raises(ObjectNotFound):
        store.size("missing/key")
    assert not store.exists("missing/key")


def test_last_modified_is_the_utc_time_the_object_was_written(store: Storage) -> None:
    # S3 keeps whole seconds, so the window is widened by one on each side.
    before = datetime.now(UTC) - timedelta(seconds=1)
    store.put("dated/object", io.BytesIO(b"x"), content_type=CONTENT_TYPE)
    after = datetime.now(UTC) + timedelta(seconds=1)

    written = store.last_modified("dated/object")

    assert written.utcoffset() == timedelta(0)
    assert before <= written <= after
    with pytest.raises(ObjectNotFound):
        store.last_modified("dated/missing")
    with pytest.raises(InvalidKey):
        store.last_modified("a/../b")


def test_delete_is_idempotent_and_exists_follows_it(store: Storage) -> None:
    store.put("doomed", io.BytesIO(b"x"), content_type=CONTENT_TYPE)
    assert store.exists("doomed")

    store.delete("doomed")
    assert not store.exists("doomed")
    store.delete("doomed")
    store.delete("never/existed")

    assert not store.exists("doomed")
    with pytest.raises(ObjectNotFound):
        store.open("doomed")


def test_a_deleted_key_can_be_written_again(store: Storage) -> None:
    store.put("reused", io.BytesIO(b"first"), content_type=CONTENT_TYPE)
    store.delete("reused")

    stored = store.put("reused", io.BytesIO(b"second"), content_type=CONTENT_TYPE)

    assert stored.size == len(b"second")
    with store.open("reused") as fh:
        assert fh.read() == b"second"


def test_keys_lists_what_was_put_under_a_prefix_and_nothing_else(store: Storage) -> None:
    for key in ["ref/1/a.png", "ref/1/b.dcm", "ref/10/c.jpg", "ref/2/d.png", "other/e.png", "top"]:
        store.put(key, io.BytesIO(key.encode()), content_type=CONTENT_TYPE)

    assert sorted(store.keys("ref/1/")) == ["ref/1/a.png", "ref/1/b.dcm"]
    # A prefix is a plain string prefix, as in S3 listings, not a directory name.
    assert sorted(store.keys("ref/1")) == ["ref/1/a.png", "ref/1/b.dcm", "ref/10/c.jpg"]
    assert sorted(store.keys()) == [
        "other/e.png", "ref/1/a.png", "ref/1/b.dcm", "ref/10/c.jpg", "ref/2/d.png", "top",
    ]
    assert list(store.keys("nothing/here/")) == []


def test_keys_of_an_empty_store_is_empty(store: Storage) -> None:
    assert list(store.keys()) == []


INVALID_KEYS = [
    "../x",
    "/abs",
    "a//b",
    "a/../b",
    "a/./b",
    "a\\b",
    "",
    ".",
    "..",
    "a/",
    "a\x00b",
    "x" * 513,
    "spaced name",
    "r\u00f6ntgen",
]


@pytest.mark.parametrize("key", INVALID_KEYS)
def test_invalid_keys_are_refused_by_every_operation(store: Storage, key: str) -> None:
    stream = io.BytesIO(b"never stored")

    with pytest.raises(InvalidKey):
        store.put(key, stream, content_type=CONTENT_TYPE)
    with pytest.raises(InvalidKey):
        store.open(key)
    with pytest.raises(InvalidKey):
        store.delete(key)
    with pytest.raises(InvalidKey):
        store.exists(key)
    with pytest.raises(InvalidKey):
        store.size(key)
    with pytest.raises(InvalidKey):
        store.url(key)

    assert stream.tell() == 0
    assert list(store.keys()) == []


def test_invalid_key_is_also_a_value_error(store: Storage) -> None:
    with pytest.raises(ValueError, match="segment"):
        store.open("a/../b")


def test_a_key_of_the_maximum_length_is_accepted(store: Storage) -> None:
    # Segments stay under the 255-byte file name limit of local filesystems.
    key = "/".join(["a" * 200, "b" * 200, "c" * 110])
    assert len(key) == 512

    store.put(key, io.BytesIO(b"long"), content_type=CONTENT_TYPE)

    assert list(store.keys()) == [key]
    assert store.size(key) == 4


def test_listing_prefixes_with_dot_dot_segments_are_refused(store: Storage) -> None:
    with pytest.raises(InvalidKey):
        list(store.keys("../"))
    with pytest.raises(InvalidKey):
        list(store.keys("a/../"))


def test_check_passes_and_leaves_nothing_behind(store: Storage) -> None:
    assert store.check() is None
    assert list(store.keys()) == []


@pytest.mark.parametrize("fail_at", [0, 5000, LARGE - MiB], ids=["at-once", "early", "after-many-parts"])
def test_a_stream_failing_part_way_leaves_no_object_under_the_key(store: Storage, fail_at: int) -> None:
    broken = PatternStream(LARGE, fail_at=fail_at)

    # The stream's own exception comes back unchanged: it is not the store's failure.
    with pytest.raises(SourceError):
        store.put("interrupted", broken, content_type=CONTENT_TYPE)

    assert broken.position == fail_at
    assert not store.exists("interrupted")
    assert list(store.keys()) == []
    # Nothing half-written blocks the key either.
    store.put("interrupted", io.BytesIO(b"retry"), content_type=CONTENT_TYPE)
    with store.open("interrupted") as fh:
        assert fh.read() == b"retry"


@pytest.mark.parametrize(("announced", "actual"), [(10, 9), (10, 11), (3 * MiB, 3 * MiB + 1)])
def test_a_stream_of_a_different_size_than_announced_stores_nothing(
    store: Storage, announced: int, actual: int
) -> None:
    with pytest.raises(SizeMismatch):
        store.put("sized", PatternStream(actual), content_type=CONTENT_TYPE, size=announced)

    assert not store.exists("sized")
    assert list(store.keys()) == []


def test_expiry_of_download_urls_is_capped_at_five_minutes(store: Storage) -> None:
    store.put("capped", io.BytesIO(b"x"), content_type=CONTENT_TYPE)

    with pytest.raises(ValueError, match="300"):
        store.url("capped", expires_in=301)
    with pytest.raises(ValueError, match="300"):
        store.url("capped", expires_in=0)
    # Within the cap every backend answers: a URL, or None where it cannot issue one.
    url = store.url("capped", expires_in=300, filename="x.bin", content_type="image/png")
    assert url is None or url.startswith("http")


def test_backend_names_what_the_application_records(store: Storage) -> None:
    assert store.backend in {"local", "s3"}
    assert store.backend == ("local" if isinstance(store, LocalStorage) else "s3")


# -- multipart objects (resumable uploads) ---------------------------------------------------------------


def _parts(store: Storage) -> list[bytes]:
    # Every part but the last at the backend's minimum (5 MiB on S3), so the test is as small as it can be.
    size = store.min_part_size
    return [bytes([n]) * size for n in (1, 2)] + [b"the last part is short"]


def test_parts_are_joined_in_order_into_one_object_and_are_not_objects_before(store: Storage) -> None:
    parts = _parts(store)
    upload_id = store.start_multipart("tus/a/b/upload")
    # Sent out of order, one of them twice (a retry replaces it).
    tags = {3: store.put_part("tus/a/b/upload", upload_id, 3, io.BytesIO(parts[2]), size=len(parts[2]))}
    tags[1] = store.put_part("tus/a/b/upload", upload_id, 1, io.BytesIO(b"x" * len(parts[0])), size=len(parts[0]))
    tags[1] = store.put_part("tus/a/b/upload", upload_id, 1, io.BytesIO(parts[0]), size=len(parts[0]))
    tags[2] = store.put_part("tus/a/b/upload", upload_id, 2, io.BytesIO(parts[1]), size=len(parts[1]))
    assert not store.exists("tus/a/b/upload")

    store.complete_multipart("tus/a/b/upload", upload_id, sorted(tags.items()))

    joined = b"".join(parts)
    assert read_back(store, "tus/a/b/upload") == (len(joined), hashlib.sha256(joined).hexdigest())
    assert list(store.keys("tus/")) == ["tus/a/b/upload"]
    # Write-once like every object: a second multipart upload cannot replace it.
    again = store.start_multipart("tus/a/b/upload")
    tag = store.put_part("tus/a/b/upload", again, 1, io.BytesIO(b"late"), size=4)
    with pytest.raises(ObjectExists):
        store.complete_multipart("tus/a/b/upload", again, [(1, tag)])


def test_an_aborted_multipart_upload_leaves_nothing(store: Storage) -> None:
    upload_id = store.start_multipart("tus/a/b/gone")
    store.put_part("tus/a/b/gone", upload_id, 1, io.BytesIO(b"abc"), size=3)

    store.abort_multipart("tus/a/b/gone", upload_id)
    store.abort_multipart("tus/a/b/gone", upload_id)  # twice is not an error

    assert list(store.keys("tus/")) == []


def test_a_digest_the_caller_already_computed_is_kept_and_the_bytes_are_not_hashed_again(store: Storage) -> None:
    data = b"spooled and hashed once " * 4096
    known = hashlib.sha256(data).hexdigest()
    stored = store.put("known/digest.bin", io.BytesIO(data), content_type=CONTENT_TYPE, size=len(data),
                       sha256=known)
    assert (stored.sha256, stored.size) == (known, len(data))
    assert read_back(store, "known/digest.bin") == (len(data), known)
    # The store takes the caller's word for it: handed another digest, it returns that one, having computed none.
    other = hashlib.sha256(b"what the caller claims").hexdigest()
    claimed = store.put("known/claimed.bin", io.BytesIO(data), content_type=CONTENT_TYPE, sha256=other)
    assert claimed.sha256 == other
    assert read_back(store, "known/claimed.bin") == (len(data), known)


def test_a_known_digest_still_counts_the_bytes_and_must_be_well_formed(store: Storage) -> None:
    data = b"twelve bytes"
    with pytest.raises(SizeMismatch):
        store.put("known/short.bin", io.BytesIO(data), content_type=CONTENT_TYPE, size=len(data) + 1,
                  sha256=hashlib.sha256(data).hexdigest())
    assert not store.exists("known/short.bin")
    with pytest.raises(ValueError, match="SHA-256"):
        store.put("known/bad.bin", io.BytesIO(data), content_type=CONTENT_TYPE, sha256="not-a-digest")
    assert not store.exists("known/bad.bin")


def test_a_range_reads_those_bytes_only_fewer_at_the_end_and_none_past_it(store: Storage) -> None:
    payload = bytes(range(256)) * 40
    store.put("ranges/one", io.BytesIO(payload), content_type=CONTENT_TYPE)

    assert store.open_range("ranges/one", 0, 10) == payload[:10]
    assert store.open_range("ranges/one", 5000, 300) == payload[5000:5300]
    assert store.open_range("ranges/one", len(payload) - 4, 100) == payload[-4:]
    assert store.open_range("ranges/one", len(payload), 10) == b""
    assert store.open_range("ranges/one", len(payload) + 50, 10) == b""
    assert store.open_range("ranges/one", 3, 0) == b""


def test_a_range_of_a_missing_object_or_a_negative_range_is_refused(store: Storage) -> None:
    store.put("ranges/two", io.BytesIO(b"0123456789"), content_type=CONTENT_TYPE)

    with pytest.raises(ObjectNotFound):
        store.open_range("ranges/none", 0, 10)
    for start, length in ((-1, 5), (0, -5)):
        with pytest.raises(ValueError, match="non-negative"):
            store.open_range("ranges/two", start, length)


def test_head_gives_the_size_and_vouches_for_no_digest_the_store_never_saw(store: Storage) -> None:
    # Our own puts send no checksum (several S3-compatible stores refuse them): neither backend can vouch.
    store.put("heads/one", io.BytesIO(b"x" * 1234), content_type=CONTENT_TYPE)

    head = store.head("heads/one")

    assert head == ObjectHead(size=1234, sha256=None)
    with pytest.raises(ObjectNotFound):
        store.head("heads/none")


def test_a_range_reader_fetches_only_what_is_read_in_growing_windows(store: Storage) -> None:
    size = 3 * MiB
    store.put("ranges/big", PatternStream(size), content_type=CONTENT_TYPE, size=size)
    with store.open("ranges/big") as whole:
        expected = whole.read()

    reader = RangeReader(store, "ranges/big", size, first=1024)
    with reader:
        assert reader.read(132) == expected[:132]
        assert reader.seek(0, io.SEEK_END) == size
        reader.seek(500)
        # Across the end of the first window: every byte asked for comes back.
        assert reader.read(1000) == expected[500:1500]
        reader.seek(size - 10)
        assert reader.read(100) == expected[-10:]
        assert reader.read(1) == b""

    assert reader.requests == 3
    assert reader.fetched < 10 * 1024


def test_a_range_reader_over_an_object_shorter_than_its_size_refuses_to_pretend(store: Storage) -> None:
    store.put("ranges/short", io.BytesIO(b"0123456789"), content_type=CONTENT_TYPE)

    with RangeReader(store, "ranges/short", 100) as reader, pytest.raises(StorageError):
        reader.read(50)


def test_a_range_reader_keeps_the_stores_failure_for_its_caller(store: Storage) -> None:
    store.put("ranges/gone", io.BytesIO(b"0123456789" * 10), content_type=CONTENT_TYPE)
    reader = RangeReader(store, "ranges/gone", 100, first=10)
    assert reader.read(5) == b"01234"
    store.delete("ranges/gone")

    with reader, pytest.raises(ObjectNotFound):
        reader.read(50)

    assert isinstance(reader.failure, ObjectNotFound)
