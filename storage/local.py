"""Objects as files under one root directory, for development and single-host deployments."""

from __future__ import annotations

import contextlib
import errno
import io
import os
import stat
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from .base import (
    MAX_URL_EXPIRY_SECONDS,
    HashingReader,
    InvalidKey,
    ObjectExists,
    ObjectNotFound,
    Storage,
    StorageUnavailable,
    StoredObject,
    is_valid_key,
    spooled_fileno,
    validate_content_type,
    validate_expiry,
    validate_key,
    validate_prefix,
    validate_range,
)

_CHUNK = 1024 * 1024
# '~' is outside the key alphabet, so no valid key can ever name one of our scratch files, and
# keys() can tell them apart from objects by the key rule alone.
_TEMP_PREFIX = ".~tmp-"
_PROBE_PREFIX = ".~probe-"
# Common file name limit (ext4, xfs, btrfs, APFS); longer segments are valid S3 keys but cannot be
# files, and are refused as keys rather than surfacing as an unavailable store.
_MAX_SEGMENT = 255
_FILE_MODE = 0o600
_DIR_MODE = 0o700


class LocalStorage(Storage):
    backend = "local"

    def __init__(self, root: str | Path) -> None:
        root_path = Path(root)
        try:
            root_path.mkdir(mode=_DIR_MODE, parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageUnavailable(f"cannot create storage root {root_path}") from exc
        # Resolved once so every later containment check compares against the real location,
        # even if the configured path goes through symlinks.
        self.root = root_path.resolve()
        if not self.root.is_dir():
            raise StorageUnavailable(f"storage root {self.root} is not a directory")

    def __repr__(self) -> str:
        return f"LocalStorage({str(self.root)!r})"

    # -- paths -----------------------------------------------------------------------------------

    def _inside_root(self, path: Path) -> bool:
        return path != self.root and path.is_relative_to(self.root)

    def _path(self, key: str) -> Path:
        """The resolved file path for a valid key, refusing anything that lands outside the root.

        The key rules already forbid '..'; resolving catches the other way out, a symlink placed
        inside the root (by an operator or another process) that points elsewhere.
        """
        validate_key(key)
        if any(len(segment) > _MAX_SEGMENT for segment in key.split("/")):
            raise InvalidKey(f"local storage key segments are limited to {_MAX_SEGMENT} characters")
        resolved = (self.root / key).resolve()
        if not self._inside_root(resolved):
            raise InvalidKey("storage key resolves outside the storage root")
        return resolved

    def _make_parents(self, path: Path) -> None:
        # Created one level at a time because os.makedirs applies the mode only to the last level,
        # and so each level can be re-checked against the root as it appears.
        current = self.root
        for part in path.parent.relative_to(self.root).parts:
            current = current / part
            try:
                current.mkdir(mode=_DIR_MODE)
            except FileExistsError:
                if not current.is_dir():
                    raise ObjectExists("key conflicts with an existing object on its path") from None
            except NotADirectoryError:
                raise ObjectExists("key conflicts with an existing object on its path") from None
            except OSError as exc:
                raise StorageUnavailable("cannot create directory in storage root") from exc
            if not self._inside_root(current.resolve()):
                raise InvalidKey("storage key resolves outside the storage root")

    # -- Storage ---------------------------------------------------------------------------------

    def put(self, key: str, stream: BinaryIO, *, content_type: str, size: int | None = None,
            sha256: str | None = None) -> StoredObject:
        path = self._path(key)
        # The content type is not kept: the application records it alongside the key.
        validate_content_type(content_type)
        reader = HashingReader(stream, size, sha256)
        # Fail before reading a possibly large stream when the answer is already known; the
        # link below is what actually guarantees no overwrite.
        if path.is_dir():
            raise ObjectExists("key names a directory holding other keys")
        if os.path.lexists(path):
            raise ObjectExists(f"an object already exists under {key!r}")
        self._make_parents(path)
        if size is not None and sha256 is not None:
            linked = self._link_spool(stream, path, key, size, sha256)
            if linked is not None:
                return linked
        try:
            fd, tmp_name = tempfile.mkstemp(prefix=_TEMP_PREFIX, dir=path.parent)
        except OSError as exc:
            raise StorageUnavailable("cannot create a file in storage root") from exc
        tmp = Path(tmp_name)
        try:
            # Unbuffered, so every write error surfaces from write() itself, where it is translated,
            # rather than from an implicit flush in close().
            with os.fdopen(fd, "wb", buffering=0) as fh:
                self._write(fh, reader)
            self._publish(tmp, path, key)
        finally:
            # After a successful publish this removes only the extra name; otherwise it removes
            # every byte written so far, whatever the reason for stopping.
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        return reader.result(key)

    def _link_spool(self, stream: BinaryIO, path: Path, key: str, size: int, sha256: str) -> StoredObject | None:
        """Make the upload's spool file the object, without copying its bytes: possible when the stream hands
        over an unnamed temporary file (``spooled_fileno``) made on this store's filesystem without O_EXCL,
        and /proc is mounted. The file is given the store's mode and flushed to disk before it gets its
        name, as a copied file is; ``sha256`` is the digest computed while the file was spooled. None when
        it cannot be done: the caller then copies the stream as usual."""
        fd = spooled_fileno(stream)
        if fd is None:
            return None
        try:
            spooled = os.fstat(fd)
            same_filesystem = spooled.st_dev == os.stat(path.parent).st_dev
        except OSError:
            return None
        # A size that does not match is left to the copy, which reports it as SizeMismatch.
        if not same_filesystem or not stat.S_ISREG(spooled.st_mode) or spooled.st_size != size:
            return None
        try:
            os.fchmod(fd, _FILE_MODE)
            os.fsync(fd)
        except OSError:
            return None
        try:
            directory = os.open(path.parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except OSError:
            return None
        try:
            try:
                # linkat(AT_SYMLINK_FOLLOW) on the descriptor's /proc entry gives an O_TMPFILE file its first
                # name (os.link passes that flag only with a directory descriptor; plain link() would link the
                # /proc entry itself). Like the copy's link(), it fails if the name exists instead of replacing it.
                os.link(f"/proc/self/fd/{fd}", path.name, dst_dir_fd=directory, follow_symlinks=True)
            except FileExistsError:
                raise ObjectExists(f"an object already exists under {key!r}") from None
            except OSError:
                # No /proc, another mount of the same device (EXDEV), a spool file that has no name to give
                # (a named temporary file already unlinked, or one opened with O_EXCL): copy instead.
                return None
            try:
                os.fsync(directory)
            except OSError as exc:
                with contextlib.suppress(OSError):
                    path.unlink()
                raise StorageUnavailable(_describe(exc, "cannot flush directory in storage root")) from exc
        finally:
            os.close(directory)
        return StoredObject(key=key, size=size, sha256=sha256)

    @staticmethod
    def _write(fh: io.FileIO, reader: HashingReader) -> None:
        try:
            os.fchmod(fh.fileno(), _FILE_MODE)
        except OSError as exc:
            raise StorageUnavailable("cannot set permissions on a stored file") from exc
        while True:
            # Reading stays outside the OSError translation: a failing upload stream is the
            # caller's problem and must surface as itself, not as an unavailable store.
            chunk = reader.read(_CHUNK)
            if not chunk:
                break
            view = memoryview(chunk)
            try:
                # A raw write may be partial (signals, some filesystems); keep going until done.
                while view:
                    written = fh.write(view)
                    view = view[written:]
            except OSError as exc:
                raise StorageUnavailable(_describe(exc, "cannot write to storage root")) from exc
        try:
            os.fsync(fh.fileno())
        except OSError as exc:
            raise StorageUnavailable(_describe(exc, "cannot flush to storage root")) from exc

    def _publish(self, tmp: Path, path: Path, key: str) -> None:
        try:
            # link() fails if the name exists, which rename() would silently replace: this is what
            # makes two concurrent puts of one key safe.
            os.link(tmp, path)
        except FileExistsError:
            raise ObjectExists(f"an object already exists under {key!r}") from None
        except OSError as exc:
            raise StorageUnavailable(_describe(exc, "cannot publish file in storage root")) from exc
        try:
            _fsync_dir(path.parent)
        except OSError as exc:
            # Not durable means not stored: take the name back so the caller's error is the truth.
            with contextlib.suppress(OSError):
                path.unlink()
            raise StorageUnavailable(_describe(exc, "cannot flush directory in storage root")) from exc

    def open(self, key: str) -> BinaryIO:
        path = self._path(key)
        try:
            # O_NOFOLLOW: if the last component was swapped for a symlink since resolving, refuse.
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except (FileNotFoundError, NotADirectoryError):
            raise ObjectNotFound(f"no object under {key!r}") from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise InvalidKey("storage key resolves to a symlink") from None
            raise StorageUnavailable(_describe(exc, "cannot open file in storage root")) from exc
        try:
            is_file = stat.S_ISREG(os.fstat(fd).st_mode)
        except OSError as exc:
            os.close(fd)
            raise StorageUnavailable(_describe(exc, "cannot stat file in storage root")) from exc
        if not is_file:
            # A directory is only a prefix of other keys, never an object itself.
            os.close(fd)
            raise ObjectNotFound(f"no object under {key!r}")
        return os.fdopen(fd, "rb")

    def open_range(self, key: str, start: int, length: int) -> bytes:
        validate_range(start, length)
        with self.open(key) as stream:
            stream.seek(start)
            pieces: list[bytes] = []
            try:
                while length > 0 and (data := stream.read(length)):
                    pieces.append(data)
                    length -= len(data)
            except OSError as exc:
                raise StorageUnavailable(_describe(exc, "cannot read file in storage root")) from exc
            return b"".join(pieces)

    @staticmethod
    def _stat(path: Path) -> os.stat_result | None:
        try:
            st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise StorageUnavailable(_describe(exc, "cannot stat file in storage root")) from exc
        return st if stat.S_ISREG(st.st_mode) else None

    def delete(self, key: str) -> None:
        path = self._path(key)
        if self._stat(path) is None:
            return
        try:
            path.unlink()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise StorageUnavailable(_describe(exc, "cannot delete file in storage root")) from exc
        # Empty directories are left in place: removing them could race with a put that has just
        # created the directory and is about to link its file into it.

    def exists(self, key: str) -> bool:
        return self._stat(self._path(key)) is not None

    def size(self, key: str) -> int:
        st = self._stat(self._path(key))
        if st is None:
            raise ObjectNotFound(f"no object under {key!r}")
        return st.st_size

    def last_modified(self, key: str) -> datetime:
        st = self._stat(self._path(key))
        if st is None:
            raise ObjectNotFound(f"no object under {key!r}")
        # The file's mtime is set by the last write, which for a write-once object is its creation.
        return datetime.fromtimestamp(st.st_mtime, tz=UTC)

    def url(
        self,
        key: str,
        *,
        expires_in: int = MAX_URL_EXPIRY_SECONDS,
        filename: str | None = None,
        content_type: str | None = None,
    ) -> str | None:
        # Validated anyway so a caller's mistake shows up in development, not first on S3.
        validate_key(key)
        validate_expiry(expires_in)
        if content_type is not None:
            validate_content_type(content_type)
        return None

    def keys(self, prefix: str = "") -> Iterator[str]:
        validate_prefix(prefix)
        # Walk only the deepest directory the prefix names completely; the rest is string matching,
        # which gives the same answers as an S3 listing ("ref/1" matches "ref/10/x" too).
        directory = prefix.rpartition("/")[0]
        # Walked by its unresolved name so the relative paths below spell keys, but only after the
        # resolved location has been checked to be inside the root.
        start = self.root / directory if directory else self.root
        if directory and not self._inside_root(start.resolve()):
            raise InvalidKey("listing prefix resolves outside the storage root")
        if not start.is_dir():
            return

        def _raise(exc: OSError) -> None:
            # A directory removed while walking is simply gone; anything else means the listing
            # would be incomplete, which an integrity check must not mistake for "no objects".
            if not isinstance(exc, FileNotFoundError):
                raise StorageUnavailable(_describe(exc, "cannot list storage root")) from exc

        for dirpath, dirnames, filenames in os.walk(start, onerror=_raise, followlinks=False):
            rel_dir = os.path.relpath(dirpath, self.root)
            base = "" if rel_dir == "." else rel_dir.replace(os.sep, "/") + "/"
            dirnames.sort()
            for name in sorted(filenames):
                key = base + name
                # Scratch files fail the key rule by construction, so this skips them.
                if not key.startswith(prefix) or not is_valid_key(key):
                    continue
                try:
                    st = os.lstat(os.path.join(dirpath, name))
                except FileNotFoundError:
                    continue
                except OSError as exc:
                    raise StorageUnavailable(_describe(exc, "cannot list storage root")) from exc
                # Symlinks are never created by this class, so one is not an object of ours.
                if stat.S_ISREG(st.st_mode):
                    yield key

    def check(self) -> None:
        # Creating and removing a real file proves more than an access() call: it catches a full or
        # read-only filesystem, and running as root makes permission bits meaningless to access().
        if not self.root.is_dir():
            raise StorageUnavailable("storage root is missing")
        try:
            fd, probe = tempfile.mkstemp(prefix=_PROBE_PREFIX, dir=self.root)
        except OSError as exc:
            raise StorageUnavailable(_describe(exc, "storage root is not writable")) from exc
        try:
            os.write(fd, b"ok")
        except OSError as exc:
            raise StorageUnavailable(_describe(exc, "storage root is not writable")) from exc
        finally:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(probe)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _describe(exc: OSError, what: str) -> str:
    # errno names only: strerror is fine too, but the path in the OSError is left out because
    # error texts may end up in logs and the path carries the key.
    name = errno.errorcode.get(exc.errno or 0, "unknown error")
    return f"{what} ({name})"
