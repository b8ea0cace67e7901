"""Write-once object storage for uploaded files, on a local directory or S3.

The application picks a backend with one URL (``from_url``) and otherwise talks only to the
``Storage`` interface and the ``StorageError`` family defined here.
"""

from __future__ import annotations

from urllib.parse import parse_qs, unquote, urlsplit

from .base import (
    MAX_KEY_LENGTH,
    MAX_POST_EXPIRY_SECONDS,
    MAX_URL_EXPIRY_SECONDS,
    InvalidKey,
    ObjectExists,
    ObjectHead,
    ObjectNotFound,
    PresignedPost,
    PresignNotSupported,
    RangeReader,
    SizeMismatch,
    Storage,
    StorageError,
    StorageUnavailable,
    StoredObject,
    content_disposition,
    validate_key,
)
from .local import LocalStorage
from .s3 import CONNECT_TIMEOUT, READ_TIMEOUT, S3Storage

__all__ = [
    "MAX_KEY_LENGTH",
    "MAX_POST_EXPIRY_SECONDS",
    "MAX_URL_EXPIRY_SECONDS",
    "InvalidKey",
    "LocalStorage",
    "ObjectExists",
    "ObjectHead",
    "ObjectNotFound",
    "PresignNotSupported",
    "PresignedPost",
    "RangeReader",
    "S3Storage",
    "SizeMismatch",
    "Storage",
    "StorageError",
    "StorageUnavailable",
    "StoredObject",
    "content_disposition",
    "from_url",
    "validate_key",
]

_S3_PARAMS = ("kms_key_id", "sse", "region", "connect_timeout", "read_timeout")


def from_url(url: str) -> Storage:
    """Build the store a URL describes.

    ``file:///absolute/path`` gives a LocalStorage rooted there. ``s3://bucket/optional/prefix``
    gives an S3Storage; the query may set ``kms_key_id``, ``sse`` (AES256 or aws:kms) and
    ``region``. Endpoint and credentials are not part of the URL: boto3 reads them from its usual
    environment variables, which keeps secrets out of a value that tends to be logged.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if parts.fragment:
        raise ValueError("storage URL must not have a #fragment")
    if scheme == "file":
        return _local_from_url(url, parts.netloc, parts.path, parts.query)
    if scheme == "s3":
        return _s3_from_url(parts.netloc, parts.path, parts.query)
    shown = scheme or "(none)"
    raise ValueError(f"unsupported storage URL scheme {shown!r}: use file:///absolute/path or s3://bucket/prefix")


def _local_from_url(url: str, netloc: str, path: str, query: str) -> Storage:
    if netloc:
        # file://relative/path parses "relative" as a host name, which is never what was meant.
        raise ValueError(
            f"file storage URL must name an absolute path as file:///path (three slashes), got {url!r}"
        )
    if query:
        names = sorted(parse_qs(query, keep_blank_values=True)) or [query]
        raise ValueError(f"file storage URL takes no query parameters, got: {', '.join(names)}")
    local_path = unquote(path)
    if not local_path.startswith("/"):
        raise ValueError(f"file storage URL must name an absolute path as file:///path, got {url!r}")
    return LocalStorage(local_path)


def _s3_from_url(netloc: str, path: str, query: str) -> Storage:
    if not netloc:
        raise ValueError("s3 storage URL must name a bucket: s3://bucket/optional/prefix")
    if "@" in netloc or ":" in netloc:
        # Credentials or an endpoint in the URL would bypass boto3's configuration and leak secrets
        # into logs; they belong in AWS_* environment variables.
        raise ValueError(
            "s3 storage URL must not carry credentials or a port; configure them via AWS_* variables"
        )
    params = parse_qs(query, keep_blank_values=True, strict_parsing=False)
    unknown = sorted(set(params) - set(_S3_PARAMS))
    if unknown:
        raise ValueError(
            f"unknown s3 storage URL parameter(s): {', '.join(unknown)} (allowed: {', '.join(_S3_PARAMS)})"
        )
    repeated = sorted(name for name, values in params.items() if len(values) > 1)
    if repeated:
        raise ValueError(f"s3 storage URL parameter(s) given more than once: {', '.join(repeated)}")
    values = {name: found[0] for name, found in params.items()}
    for name, value in values.items():
        if not value:
            raise ValueError(f"s3 storage URL parameter {name} is empty")
    timeouts = {"connect_timeout": CONNECT_TIMEOUT, "read_timeout": READ_TIMEOUT}
    for name in ("connect_timeout", "read_timeout"):
        if name in values:
            try:
                seconds = float(values[name])
            except ValueError:
                raise ValueError(f"s3 storage URL parameter {name} must be a number of seconds") from None
            if not 0 < seconds <= 300:
                raise ValueError(f"s3 storage URL parameter {name} must be between 0 and 300 seconds")
            timeouts[name] = seconds
    return S3Storage(
        netloc,
        unquote(path).strip("/"),
        kms_key_id=values.get("kms_key_id"),
        sse=values.get("sse"),
        region=values.get("region"),
        connect_timeout=timeouts["connect_timeout"],
        read_timeout=timeouts["read_timeout"],
    )
