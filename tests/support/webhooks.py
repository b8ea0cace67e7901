"""Real receivers for the notification tests: an HTTP server that records webhook calls and an SMTP
server that records mail, both on loopback ports chosen by the OS."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from flask import Flask

from referral import create_app
from referral.services import outbox
from storage import Storage
from tests.support.settings import make_settings
from tests.support.world import Client, Practice

SECRET = "whsec-" + "k" * 40
T0 = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Receipt:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class _Server(ThreadingHTTPServer):
    # Handler threads are joined on close, so no test ends with a socket still open.
    daemon_threads = False
    block_on_close = True


class Receiver:
    """Records every POST; answers 500 to the first ``fail_first`` of them, then ``status``."""

    def __init__(self) -> None:
        self.receipts: list[Receipt] = []
        self.fail_first = 0
        self.status = 204
        self.delay = 0.0
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._lock:
                    receiver.receipts.append(
                        Receipt(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                    )
                    failing = len(receiver.receipts) <= receiver.fail_first
                if receiver.delay:
                    time.sleep(receiver.delay)
                reply = b"receiver is down" if failing else b""
                self.send_response(500 if failing else receiver.status)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = _Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hooks/referral"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


class SmtpSink:
    """aiosmtpd on a loopback port; keeps each message's envelope and text."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], str]] = []
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd hook)
        content = envelope.content.decode("utf-8") if isinstance(envelope.content, bytes) else envelope.content
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), content))
        return "250 Message accepted"

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def __enter__(self) -> SmtpSink:
        self._controller.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._controller.stop()


@contextmanager
def notifications_app(tmp_path: Path, database_url: str, store: Storage, **overrides: Any) -> Iterator[Flask]:
    application = create_app(make_settings(tmp_path, database_url, **overrides), store=store)
    try:
        yield application
    finally:
        application.extensions["referral.engine"].dispose()


def register(practice: Practice, url: str, events: list[str] | None = None, secret: str = SECRET) -> str:
    response = practice.org_admin.post("/api/v1/webhooks",
                                       {"url": url, "events": events or ["referral.routed"], "secret": secret})
    assert response.status_code == 201, response.get_json()
    return str(response.get_json()["id"])


def delete(client: Client, path: str) -> Any:
    return client.client.delete(path, headers={"Authorization": f"Bearer {client.token}"})


def emit(app: Flask, organization_ids: list[str], event_type: str = "referral.routed",
         data: dict[str, Any] | None = None) -> list[uuid.UUID]:
    """What the workflow does on a state change: enqueue in a transaction, then commit it."""
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        events = outbox.enqueue(
            session,
            organization_ids=[uuid.UUID(o) for o in organization_ids],
            event_type=event_type,
            data=data if data is not None else {"referral_id": str(uuid.uuid4()), "status": "routed"},
        )
        session.commit()
        return [event.id for event in events]
