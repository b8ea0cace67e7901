"""Previews drawn after the upload's answer (PREVIEWS_AFTER_ANSWER): pending until drawn by whoever gets there
first (the process's background thread, the worker, or a request for the preview), flagged and told to the office
when the file cannot be drawn after all, and drawn before the answer while a drawing slot is free."""

from __future__ import annotations

import dataclasses
import io
import re
import struct
import threading
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from PIL import Image as PILImage

from referral import create_app
from referral.config import ConfigError, Settings, load_settings
from referral.db import utcnow
from referral.imaging import previews
from referral.models import Image, OutboxEvent, ReferralEvent
from referral.services import renditions
from storage import Storage
from tests.support import samples
from tests.support.api import images_of, new_referral, upload
from tests.support.settings import close_app
from tests.support.web import sign_in, user_with_password
from tests.support.world import Practice, World

pytestmark = pytest.mark.both_backends


def _undrawable_png() -> bytes:
    """A PNG whose header is sound (it passes every check made before the answer) but whose pixel data is not."""
    png = samples.png_bytes(640, 480)
    at = png.index(b"IDAT")
    length = struct.unpack(">I", png[at - 4:at])[0]
    payload = bytearray(png[at + 4:at + 4 + length])
    for index in range(10, len(payload) - 10):
        payload[index] ^= 0x5A
    crc = struct.pack(">I", zlib.crc32(b"IDAT" + bytes(payload)) & 0xFFFFFFFF)
    return png[:at + 4] + bytes(payload) + crc + png[at + 8 + length:]


@pytest.fixture
def app_settings(app_settings: Settings) -> Settings:
    return dataclasses.replace(app_settings, previews_after_answer="always")


def _pending_worker_pass(app: Flask) -> renditions.Outcome:
    return renditions.draw_pending_images(app.extensions["referral.sessionmaker"], app.extensions["referral.storage"],
                                          older_than=renditions.timedelta(0))


def _object_keys(app: Flask, image: Image) -> set[str]:
    store: Storage = app.extensions["referral.storage"]
    return {key for key in (image.storage_key, image.preview_key, image.thumbnail_key) if key and store.exists(key)}


def test_an_upload_is_answered_pending_and_the_worker_draws_it_with_its_warnings(app: Flask, riverside: Practice):
    referral_id = new_referral(riverside)
    answered = upload(riverside.staff, riverside, referral_id, samples.dicom_bytes(pixel_fill=40))

    assert answered.status_code == 201, answered.get_json()
    body = answered.get_json()
    assert (body["preview_status"], body["quality_warnings"]) == ("pending", [])
    assert body["preview_url"] == f"/api/v1/images/{body['id']}/preview"
    row = images_of(app, referral_id)[0]
    assert (row.preview_state, row.preview_key, row.thumbnail_key, row.quality_warnings) == ("pending", None, None,
                                                                                              None)

    outcome = _pending_worker_pass(app)

    assert (outcome.drawn, outcome.failed, outcome.ids) == (1, 0, [uuid.UUID(body["id"])])
    read = riverside.dentist.get(f"/api/v1/images/{body['id']}").get_json()
    assert read["preview_status"] == "ready"
    assert [w["code"] for w in read["quality_warnings"]] == ["underexposed", "low_contrast"]
    row = images_of(app, referral_id)[0]
    assert row.preview_state is None
    assert _object_keys(app, row) == {row.storage_key, row.preview_key,
                                                                     row.thumbnail_key}
    preview = riverside.dentist.get(read["preview_url"])
    assert preview.status_code == 200
    assert preview.mimetype == "image/jpeg"
    assert max(PILImage.open(io.BytesIO(preview.data)).size) <= previews.PREVIEW_MAX_SIDE
    # Drawn once: a second pass finds nothing to do.
    assert _pending_worker_pass(app).ids == []


def test_asking_for_a_pending_preview_draws_it_there_and_then(app: Flask, riverside: Practice):
    referral_id = new_referral(riverside)
    image_id = upload(riverside.staff, riverside, referral_id, samples.dicom_bytes()).get_json()["id"]

    thumbnail = riverside.dentist.get(f"/api/v1/images/{image_id}/thumbnail")

    assert thumbnail.status_code == 200
    assert thumbnail.data.startswith(b"\xff\xd8")
    assert riverside.dentist.get(f"/api/v1/images/{image_id}").get_json()["preview_status"] == "ready"
    assert riverside.dentist.get(f"/api/v1/images/{image_id}/preview").status_code == 200
    assert _pending_worker_pass(app).ids == []


def test_a_file_that_cannot_be_drawn_after_the_answer_is_flagged_and_the_office_told(app: Flask, world: World,
                                                                                     riverside: Practice):
    browser = app.test_client()
    sign_in(browser, user_with_password(world, riverside))
    referral_id = new_referral(riverside)
    answered = upload(riverside.staff, riverside, referral_id, _undrawable_png(), filename="photo.png",
                      kind="photo_intraoral", teeth=None)
    assert answered.status_code == 201, answered.get_json()
    image_id = answered.get_json()["id"]

    outcome = _pending_worker_pass(app)

    assert (outcome.drawn, outcome.failed) == (0, 1)
    read = riverside.staff.get(f"/api/v1/images/{image_id}").get_json()
    assert (read["preview_status"], read["preview_url"], read["thumbnail_url"]) == ("failed", None, None)
    refused = riverside.dentist.get(f"/api/v1/images/{image_id}/preview")
    assert refused.status_code == 409
    assert "could not be drawn" in refused.get_json()["message"]
    case = riverside.staff.get(f"/api/v1/referrals/{referral_id}").get_json()
    assert [e["action"] for e in case["events"]][-1] == "image_unreadable"
    with app.extensions["referral.sessionmaker"]() as session:
        events = session.scalars(sa.select(OutboxEvent).where(OutboxEvent.type == "image.preview_failed")).all()
        assert [(str(e.organization_id), e.data["image_id"]) for e in events] == [(riverside.id, image_id)]
        assert session.scalar(sa.select(sa.func.count()).select_from(ReferralEvent)
                              .where(ReferralEvent.action == "image_unreadable")) == 1
    home = browser.get("/").get_data(as_text=True)
    assert 'data-news="Image unreadable"' in home
    # Flagged once; the original stays downloadable.
    assert _pending_worker_pass(app).ids == []
    assert riverside.dentist.get(f"/api/v1/images/{image_id}/content").data == _undrawable_png()


def test_two_drawings_of_one_image_keep_one_set_of_renditions(app: Flask, riverside: Practice):
    referral_id = new_referral(riverside)
    image_id = uuid.UUID(upload(riverside.staff, riverside, referral_id, samples.dicom_bytes()).get_json()["id"])
    factory, store = app.extensions["referral.sessionmaker"], app.extensions["referral.storage"]
    barrier = threading.Barrier(2)
    results: list[str] = []

    def draw() -> None:
        barrier.wait()
        results.append(renditions.draw(factory, store, image_id))

    threads = [threading.Thread(target=draw) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results) == ["drawn", "skipped"]
    row = images_of(app, referral_id)[0]
    kept = set(store.keys(row.storage_key))
    assert kept == {row.storage_key, row.preview_key, row.thumbnail_key}


def test_no_transaction_is_held_while_a_pending_image_is_drawn(app: Flask, riverside: Practice,
                                                                monkeypatch: pytest.MonkeyPatch):
    """Drawing takes seconds and may wait for a slot; on SQLite an open transaction would hold the write lock and
    every upload meanwhile would wait behind it."""
    referral_id = new_referral(riverside)
    image_id = uuid.UUID(upload(riverside.staff, riverside, referral_id, samples.dicom_bytes()).get_json()["id"])
    factory, store = app.extensions["referral.sessionmaker"], app.extensions["referral.storage"]
    real_render = renditions._render
    seen: list[bool] = []
    with factory() as session:
        def render(*args: object, **kwargs: object) -> object:
            seen.append(session.in_transaction())
            return real_render(*args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(renditions, "_render", render)
        assert renditions.draw_in(session, store, image_id) == "drawn"

    assert seen == [False]
    assert images_of(app, referral_id)[0].preview_state is None


def test_a_pending_image_deleted_before_drawing_is_left_alone(app: Flask, riverside: Practice):
    referral_id = new_referral(riverside)
    image_id = upload(riverside.staff, riverside, referral_id, samples.dicom_bytes()).get_json()["id"]
    removed = riverside.staff.delete(f"/api/v1/images/{image_id}")
    assert removed.status_code == 204, removed.get_json()

    assert _pending_worker_pass(app).ids == []
    assert not images_of(app, referral_id) or images_of(app, referral_id)[0].preview_key is None


def _app_drawing(app_settings: Settings, store: Storage, timing: str) -> Iterator[Flask]:
    """An app with ``PREVIEWS_AFTER_ANSWER=timing`` and one background drawing thread."""
    application = create_app(dataclasses.replace(app_settings, previews_after_answer=timing,
                                                 preview_background_threads=1), store=store)
    yield application
    close_app(application)


@pytest.fixture
def busy_app(app_settings: Settings, store: Storage) -> Iterator[Flask]:
    """Previews before the answer while a drawing slot is free, and one background drawing thread."""
    yield from _app_drawing(app_settings, store, "busy")


def test_with_a_slot_free_the_answer_carries_the_previews_and_an_undrawable_file_is_refused(busy_app: Flask):
    practice = World(busy_app, busy_app.test_client()).practice("Lakeside Dental")
    referral_id = new_referral(practice)

    drawn = upload(practice.staff, practice, referral_id, samples.dicom_bytes(pixel_fill=40))
    refused = upload(practice.staff, practice, referral_id, _undrawable_png(), filename="photo.png",
                     kind="photo_intraoral", teeth=None)

    assert drawn.status_code == 201
    assert drawn.get_json()["preview_status"] == "ready"
    assert drawn.get_json()["quality_warnings"]
    assert refused.status_code == 422, refused.get_json()
    assert len(images_of(busy_app, referral_id)) == 1


def test_with_every_slot_busy_the_upload_is_answered_at_once_and_drawn_by_the_background_thread(busy_app: Flask):
    practice = World(busy_app, busy_app.test_client()).practice("Lakeside Dental")
    referral_id = new_referral(practice)
    slots = previews._slots
    held = 0
    while slots.acquire(blocking=False):
        held += 1
    try:
        answered = upload(practice.staff, practice, referral_id, samples.dicom_bytes())
        assert answered.status_code == 201
        assert answered.get_json()["preview_status"] == "pending"
    finally:
        for _ in range(held):
            slots.release()
    assert held >= 1

    busy_app.extensions[renditions.DRAWER].wait_idle()

    image_id = answered.get_json()["id"]
    assert practice.dentist.get(f"/api/v1/images/{image_id}").get_json()["preview_status"] == "ready"


def test_the_worker_command_draws_what_was_left_pending(app: Flask, riverside: Practice):
    referral_id = new_referral(riverside)
    upload(riverside.staff, riverside, referral_id, samples.dicom_bytes())
    with app.extensions["referral.sessionmaker"]() as session:
        session.execute(sa.update(Image).values(created_at=utcnow() - renditions.timedelta(minutes=5)))
        session.commit()

    result = app.test_cli_runner().invoke(args=["worker", "--once"])

    assert result.exit_code == 0, result.output
    assert re.search(r'"previews_drawn": 1', result.output)
    assert images_of(app, referral_id)[0].preview_status == "ready"


@pytest.mark.parametrize(("name", "value"), [("PREVIEWS_AFTER_ANSWER", "later"),
                                             ("PREVIEW_BACKGROUND_THREADS", "-1"),
                                             ("PREVIEW_BACKGROUND_THREADS", "99")])
def test_bad_preview_timing_settings_are_refused(tmp_path: Path, name: str, value: str):
    with pytest.raises(ConfigError, match=name):
        load_settings({"APP_ENV": "development", "INSTANCE_PATH": str(tmp_path), name: value})


def test_preview_timing_defaults(tmp_path: Path):
    development = load_settings({"APP_ENV": "development", "INSTANCE_PATH": str(tmp_path)})
    test = load_settings({"APP_ENV": "test", "INSTANCE_PATH": str(tmp_path)})
    assert (development.previews_after_answer, development.background_drawing_threads) == ("busy", 1)
    assert (test.previews_after_answer, test.background_drawing_threads) == ("busy", 0)
    chosen = load_settings({"APP_ENV": "development", "INSTANCE_PATH": str(tmp_path),
                            "PREVIEWS_AFTER_ANSWER": "always", "PREVIEW_BACKGROUND_THREADS": "0"})
    assert (chosen.previews_after_answer, chosen.background_drawing_threads) == ("always", 0)
    left = load_settings({"APP_ENV": "production", "INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "s" * 40,
                          "DATABASE_URL": "postgresql+psycopg://db/referral", "STORAGE_URL": "s3://bucket",
                          "PREVIEWS_AFTER_ANSWER": "Worker"})
    assert left.previews_after_answer == "worker"


@pytest.fixture
def worker_app(app_settings: Settings, store: Storage) -> Iterator[Flask]:
    """Previews left to the worker, with a background drawing thread that must stay idle."""
    yield from _app_drawing(app_settings, store, "worker")


def test_with_previews_left_to_the_worker_no_web_process_draws_and_the_worker_draws_at_once(
        worker_app: Flask, monkeypatch: pytest.MonkeyPatch):
    practice = World(worker_app, worker_app.test_client()).practice("Lakeside Dental")
    referral_id = new_referral(practice)
    drawn_here: list[object] = []
    monkeypatch.setattr(previews, "render_previews", lambda *args, **kwargs: drawn_here.append(args))
    submitted: list[uuid.UUID] = []
    monkeypatch.setattr(worker_app.extensions[renditions.DRAWER], "submit", submitted.append)

    answered = upload(practice.staff, practice, referral_id, samples.dicom_bytes(pixel_fill=40))

    assert answered.status_code == 201, answered.get_json()
    assert (answered.get_json()["preview_status"], answered.get_json()["quality_warnings"]) == ("pending", [])
    assert (drawn_here, submitted) == ([], [])
    monkeypatch.undo()

    # the worker's pass draws it at once, without the 30 seconds it leaves the web processes otherwise
    with worker_app.app_context():
        result = worker_app.test_cli_runner().invoke(args=["worker", "--once"])

    assert result.exit_code == 0, result.output
    assert re.search(r'"previews_drawn": 1', result.output)
    read = practice.dentist.get(f"/api/v1/images/{answered.get_json()['id']}").get_json()
    assert read["preview_status"] == "ready"
    assert [w["code"] for w in read["quality_warnings"]] == ["underexposed", "low_contrast"]


def test_with_previews_left_to_the_worker_a_file_undrawable_after_all_is_flagged_by_the_worker(worker_app: Flask):
    practice = World(worker_app, worker_app.test_client()).practice("Lakeside Dental")
    referral_id = new_referral(practice)

    answered = upload(practice.staff, practice, referral_id, _undrawable_png(), filename="photo.png",
                      kind="photo_intraoral", teeth=None)
    assert answered.status_code == 201, answered.get_json()
    with worker_app.app_context():
        result = worker_app.test_cli_runner().invoke(args=["worker", "--once"])

    assert result.exit_code == 0, result.output
    assert re.search(r'"previews_failed": 1', result.output)
    assert images_of(worker_app, referral_id)[0].preview_status == "failed"


def test_waiting_for_the_drawing_threads_gives_up_after_its_timeout(monkeypatch: pytest.MonkeyPatch):
    release = threading.Event()
    monkeypatch.setattr(renditions, "draw", lambda *_: release.wait(10))
    drawer = renditions.BackgroundDrawer(None, None, threads=1)  # type: ignore[arg-type]
    drawer.submit(uuid.uuid4())

    assert drawer.wait_idle(timeout=0.2) is False  # the job is still being drawn

    release.set()
    assert drawer.wait_idle(timeout=10) is True
