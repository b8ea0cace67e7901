"""The capture page's service worker, served from the site's root so that its scope is the whole site.

The worker (static/sw.js) only keeps copies of case pages a capture page asked it to keep, and this site's own
scripts and styles, so that such a page opens again without a connection; the files waiting to upload are
kept by the page itself in IndexedDB (static/capture-queue.js). See docs/web.md, "Capture without a connection".
"""

from __future__ import annotations

from pathlib import Path

from flask import Response

from referral.web import web

_WORKER = Path(__file__).resolve().parent / "static" / "sw.js"


@web.route("/sw.js", methods=["GET"])
def service_worker() -> Response:
    # No session needed: the script holds no data. A browser checks it for updates on each visit, so it is
    # never served from a cache without asking.
    response = Response(_WORKER.read_bytes(), mimetype="text/javascript")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["Service-Worker-Allowed"] = "/"
    return response
