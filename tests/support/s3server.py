"""pytest plugin: a real S3 API over HTTP, served by moto in a background thread.

Load it with ``pytest_plugins = ["tests.support.s3server"]``. Nothing is patched: boto3 talks HTTP to a
local moto server, so request signing, streaming, multipart uploads and presigned URLs are all
exercised as they would be against S3 or MinIO.
"""

from __future__ import annotations

import contextlib
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

# The fake identity moto accepts; exported so tests building their own clients can use it.
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
REGION = "us-east-1"

# Anything that could steer boto3 towards a real account or another endpoint.
_CLEARED_VARIABLES = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_REGION",
)


def free_port() -> int:
    """A loopback port that nothing listens on right now (the OS picks it when binding port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """Start moto for the session and point boto3's environment at it.

    Sets AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (``testing``), AWS_DEFAULT_REGION (us-east-1)
    and AWS_ENDPOINT_URL_S3 for the rest of the session, and clears profile, session-token and
    global endpoint variables, so that code building its own client (S3Storage, storage.from_url)
    reaches moto with no further configuration and can never reach a real account.
    """
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    with pytest.MonkeyPatch.context() as env:
        for name in _CLEARED_VARIABLES:
            env.delenv(name, raising=False)
        for name, value in FAKE_CREDENTIALS.items():
            env.setenv(name, value)
        env.setenv("AWS_DEFAULT_REGION", REGION)
        env.setenv("AWS_ENDPOINT_URL_S3", endpoint)
        server.start()
        try:
            yield endpoint
        finally:
            server.stop()
            # stop() ends serve_forever() but leaves the listening socket open, which would surface
            # as an unclosed-socket ResourceWarning (an error under filterwarnings=error).
            inner = getattr(server, "_server", None)
            if inner is not None:
                inner.server_close()


@pytest.fixture(scope="session")
def s3_client(s3_endpoint: str) -> Iterator[Any]:
    """A plain boto3 S3 client on the moto server, for arranging and inspecting test state."""
    client = boto3.session.Session().client("s3", endpoint_url=s3_endpoint, region_name=REGION)
    yield client
    client.close()


@pytest.fixture
def s3_bucket(s3_client: Any) -> Iterator[str]:
    """A new, empty bucket for one test, emptied and removed afterwards so moto's memory stays flat."""
    name = f"test-{uuid.uuid4().hex[:24]}"
    s3_client.create_bucket(Bucket=name)
    yield name
    remove_bucket(s3_client, name)


def remove_bucket(client: Any, name: str) -> None:
    for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=name):
        for upload in page.get("Uploads", []):
            client.abort_multipart_upload(Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"])
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
        objects = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if objects:
            client.delete_objects(Bucket=name, Delete={"Objects": objects})
    # A test that deleted its own bucket (to simulate an outage) has nothing left to remove.
    with contextlib.suppress(client.exceptions.NoSuchBucket):
        client.delete_bucket(Bucket=name)
