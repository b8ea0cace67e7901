"""A process draws at most PREVIEW_CONCURRENCY images at once; the others wait their turn."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from referral.config import ConfigError, load_settings
from referral.imaging import previews
from referral.imaging.inspect import inspect_image


@pytest.fixture
def one_slot() -> Iterator[None]:
    previews.set_concurrency(1)
    yield
    previews.set_concurrency(2)


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (64, 64), 128).save(buffer, format="PNG")
    return buffer.getvalue()


def test_drawings_beyond_the_slots_wait(one_slot: None, monkeypatch: pytest.MonkeyPatch) -> None:
    inside = 0
    most = 0
    lock = threading.Lock()
    real_decode = previews._decode

    def counting_decode(*args: object, **kwargs: object) -> Image.Image:
        nonlocal inside, most
        with lock:
            inside += 1
            most = max(most, inside)
        time.sleep(0.05)
        try:
            return real_decode(*args, **kwargs)  # type: ignore[arg-type]
        finally:
            with lock:
                inside -= 1

    monkeypatch.setattr(previews, "_decode", counting_decode)
    data = _png()
    results: list[tuple[bytes, bytes]] = []

    def draw() -> None:
        stream = io.BytesIO(data)
        results.append(previews.render_previews(stream, inspect_image(stream, len(data))))

    threads = [threading.Thread(target=draw) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4
    assert all(preview[:3] == b"\xff\xd8\xff" for preview, _ in results)
    assert most == 1


def test_the_number_of_slots_is_a_checked_setting(tmp_path: Path) -> None:
    base = {"APP_ENV": "test", "SECRET_KEY": "x" * 40, "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite",
            "STORAGE_URL": f"file://{tmp_path}/store"}
    assert load_settings(base).preview_concurrency == 2
    assert load_settings({**base, "PREVIEW_CONCURRENCY": "4"}).preview_concurrency == 4
    with pytest.raises(ConfigError, match="PREVIEW_CONCURRENCY"):
        load_settings({**base, "PREVIEW_CONCURRENCY": "0"})
    with pytest.raises(ValueError, match="at least one"):
        previews.set_concurrency(0)
