"""Previews and thumbnails drawn after an upload has been answered.

Drawing a radiograph's preview costs more CPU than everything else an upload does, and while a process's drawing
slots are all busy (a burst of large files) an upload that waited for one would hold its request thread. So an
upload may be answered once its original and its row are durable, with ``preview_status`` ``pending``
(``PREVIEWS_AFTER_ANSWER``: ``busy`` defers only when no slot is free, ``always`` always, ``never`` never;
``worker`` always, and leaves the drawing to the worker, so that the web processes never decode pixels). The
file has then passed every check that needs no full decode (type, header, size budget, a JPEG cut short).

Whoever gets there first draws a pending image: a background thread of the process that answered the upload
(``BackgroundDrawer``, started on its first job), the worker's pass (``draw_pending_images``: direct-to-storage
uploads, whose bytes never passed through a web process, and images whose process stopped before drawing them),
or a request for the preview itself (``draw``, so that a viewer never
waits on the others). Each drawing writes its renditions under keys of its own and records them with a
conditional update: of two drawings of one image exactly one is kept, and the other's objects are removed with its
transaction. A file that cannot be drawn after all is marked ``failed``, its case's timeline says so, and the
referring office sees it on its case list and through the ``image.preview_failed`` webhook.
"""

from __future__ import annotations

import io
import logging
import queue
import tempfile
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import BinaryIO, cast

import sqlalchemy as sa
from PIL.Image import Image as PILImage
from sqlalchemy.orm import Session, sessionmaker

from referral.db import new_id, utcnow
from referral.imaging import quality
from referral.imaging.inspect import DamagedImage, UnsupportedImageType, inspect_image
from referral.imaging.previews import render_previews
from referral.models import Image, PendingUpload, Referral, ReferralEvent
from referral.models.images import PREVIEW_FAILED, PREVIEW_PENDING
from referral.services import outbox
from storage import Storage, StorageError

log = logging.getLogger(__name__)

POLICY_KEY = "referral.renditions"
DRAWER = "referral.preview_drawer"  # app.extensions key
UNREADABLE_ACTION = "image_unreadable"
FAILED_EVENT = "image.preview_failed"
# The worker leaves an image this long to the process that answered its upload before drawing it itself.
WORKER_GRACE = timedelta(seconds=30)
_CHUNK = 1024 * 1024


@dataclass
class RenditionPolicy:
    """When a process's uploads get their renditions, and who draws those left for after the answer."""

    timing: str = "busy"
    drawer: BackgroundDrawer | None = None

    def defer(self, drawn_now: Callable[[], tuple[bytes, bytes] | None]) -> tuple[bytes, bytes] | None:
        """The renditions drawn before the answer, or None to draw them after it."""
        if self.timing in ("always", "worker"):
            return None
        return drawn_now()


def policy_of(session: Session) -> RenditionPolicy:
    """The policy of the application whose session factory made ``session`` (the default policy otherwise)."""
    found = session.info.get(POLICY_KEY)
    return found if isinstance(found, RenditionPolicy) else RenditionPolicy()


def install(factory: sessionmaker[Session], policy: RenditionPolicy) -> None:
    """Give every session the factory makes this policy."""
    info = dict(factory.kw.get("info") or {})
    info[POLICY_KEY] = policy
    factory.configure(info=info)


@dataclass
class Outcome:
    drawn: int = 0
    failed: int = 0
    skipped: int = 0
    retry: int = 0
    ids: list[uuid.UUID] = field(default_factory=list)

    def add(self, image_id: uuid.UUID, result: str) -> None:
        setattr(self, result, getattr(self, result) + 1)
        self.ids.append(image_id)


def draw(factory: sessionmaker[Session], store: Storage, image_id: uuid.UUID) -> str:
    """Draw one pending image's renditions and record them. ``drawn``; ``failed`` (the file could not be drawn:
    flagged and the office told); ``skipped`` (not pending, deleted, or drawn meanwhile by someone else);
    ``retry`` (the store could not be read; the image stays pending)."""
    with factory() as session:
        return draw_in(session, store, image_id)


def draw_in(session: Session, store: Storage, image_id: uuid.UUID) -> str:
    """``draw`` in the caller's session; the outcome is committed (the caller's transaction with it)."""
    image = session.get(Image, image_id)
    if image is None or image.preview_state != PREVIEW_PENDING or image.deleted_at is not None:
        return "skipped"
    # No transaction is held while the file is read and drawn, which takes seconds and may wait for a drawing slot:
    # on SQLite every transaction holds the database's write lock, so an upload waiting behind it would time out.
    # The outcome is recorded in a transaction of its own, only if the image is still pending then.
    session.commit()
    try:
        with tempfile.TemporaryFile() as spool:
            size = _spool(store, image.storage_key, spool)
            drawn, warnings = _render(spool, size, radiograph=not image.kind.is_photo)
    except StorageError:
        log.warning("could not read an image to draw its preview; it stays pending")
        return "retry"
    except (DamagedImage, UnsupportedImageType):
        if not _flag_unreadable(session, image):
            session.rollback()
            return "skipped"
        session.commit()
        log.warning("an accepted image could not be drawn; flagged for the office")
        return "failed"
    token = new_id().hex[:12]
    keys = (f"{image.storage_key}.{token}.preview.jpg", f"{image.storage_key}.{token}.thumb.jpg")
    from referral.services.intake import PREVIEW_CONTENT_TYPE, put_object

    try:
        for key, data in zip(keys, drawn, strict=True):
            put_object(session, store, key, io.BytesIO(data), content_type=PREVIEW_CONTENT_TYPE, size=len(data))
    except StorageError:
        session.rollback()
        log.warning("could not store an image's preview; it stays pending")
        return "retry"
    kept = _settle(session, image.id, preview_key=keys[0], thumbnail_key=keys[1], preview_state=None,
                   quality_warnings=warnings)
    if not kept:
        session.rollback()  # drawn meanwhile by another: this drawing's objects go with the rollback
        return "skipped"
    session.commit()
    return "drawn"


def _spool(store: Storage, key: str, spool: BinaryIO) -> int:
    size = 0
    with store.open(key) as source:
        while chunk := source.read(_CHUNK):
            size += len(chunk)
            spool.write(chunk)
    spool.seek(0)
    return size


def _render(fp: BinaryIO, size: int, *, radiograph: bool) -> tuple[tuple[bytes, bytes], list[dict[str, str]]]:
    inspection = inspect_image(fp, size)
    warnings: list[dict[str, str]] = []

    def measure(picture: PILImage) -> None:
        warnings.extend(quality.check(picture, radiograph=radiograph, width=inspection.width,
                                      height=inspection.height))

    fp.seek(0)
    return render_previews(fp, inspection, measure=measure), warnings


def _settle(session: Session, image_id: uuid.UUID, **values: object) -> bool:
    """Record the outcome if the image is still waiting for it (conditional: one drawing wins)."""
    result = session.execute(
        sa.update(Image)
        .where(Image.id == image_id, Image.preview_state == PREVIEW_PENDING, Image.deleted_at.is_(None))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return cast(int, result.rowcount) == 1  # type: ignore[attr-defined]


def _flag_unreadable(session: Session, image: Image) -> bool:
    """Mark the image failed, put it on its case's timeline and tell its practice, in the caller's transaction;
    False when it is no longer pending (drawn or flagged meanwhile)."""
    if not _settle(session, image.id, preview_state=PREVIEW_FAILED):
        return False
    referral = session.get(Referral, image.referral_id)
    status = referral.status.value if referral is not None else ""
    session.add(ReferralEvent(referral_id=image.referral_id, action=UNREADABLE_ACTION, from_status=status,
                              to_status=status, details={"image_id": str(image.id)}))
    outbox.enqueue(session, organization_ids=[image.organization_id], event_type=FAILED_EVENT,
                   data={"referral_id": image.referral_id, "image_id": image.id, "status": status})
    return True


def draw_pending_images(factory: sessionmaker[Session], store: Storage, *, limit: int = 20,
                        older_than: timedelta = WORKER_GRACE) -> Outcome:
    """The worker's share, oldest first: direct-to-storage uploads, and images still pending some time after their
    upload (their process stopped, or has no drawing threads)."""
    outcome = Outcome()
    # Direct-to-storage uploads are the worker's from the start: no web process was asked to draw them.
    direct = sa.select(PendingUpload.image_id).where(PendingUpload.image_id.is_not(None))
    with factory() as session:
        due = session.scalars(
            sa.select(Image.id)
            .where(Image.preview_state == PREVIEW_PENDING, Image.deleted_at.is_(None),
                   sa.or_(Image.created_at <= utcnow() - older_than, Image.id.in_(direct)))
            .order_by(Image.created_at)
            .limit(limit)
        ).all()
    for image_id in due:
        outcome.add(image_id, draw(factory, store, image_id))
    return outcome


class BackgroundDrawer:
    """Threads of a web process that draw the renditions its uploads left for after their answer. Jobs are
    image ids only; a job lost with the process is drawn by the worker or on the first request for it."""

    def __init__(self, factory: sessionmaker[Session], store: Storage, threads: int) -> None:
        self._factory = factory
        self._store = store
        self._threads = threads
        self._jobs: queue.Queue[uuid.UUID] = queue.Queue()
        self._started: list[threading.Thread] = []
        self._lock = threading.Lock()

    def submit(self, image_id: uuid.UUID) -> None:
        if self._threads < 1:
            return
        self._start()
        self._jobs.put(image_id)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Until every submitted job is done, or ``timeout`` seconds have passed (tests, and a process shutting
        down); whether every job is done."""
        with self._jobs.all_tasks_done:
            return self._jobs.all_tasks_done.wait_for(lambda: self._jobs.unfinished_tasks == 0, timeout)

    def _start(self) -> None:
        with self._lock:
            # Started on first use, so that a process forked from the one that built the app gets its own threads.
            alive = [thread for thread in self._started if thread.is_alive()]
            for number in range(len(alive), self._threads):
                thread = threading.Thread(target=self._run, name=f"preview-drawer-{number}", daemon=True)
                thread.start()
                alive.append(thread)
            self._started = alive

    def _run(self) -> None:
        while True:
            image_id = self._jobs.get()
            try:
                draw(self._factory, self._store, image_id)
            except Exception as exc:  # a failed job must not end the thread; the worker tries again
                log.error("drawing a preview after the answer failed: %s", type(exc).__name__)
            finally:
                self._jobs.task_done()
