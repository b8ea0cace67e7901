"""DICOMweb at /dicomweb: QIDO-RS search, WADO-RS retrieve and STOW-RS store, for viewers and imaging software.

Bearer tokens only (checked in ``referral.http.auth``). Searches and metadata answer ``application/dicom+json``;
instances, series and studies answer ``multipart/related; type="application/dicom"`` with each stored file
exactly as it was received; ``/rendered`` and ``/thumbnail`` answer the JPEG preview and thumbnail drawn at
intake. Errors are the API's JSON errors, with the status DICOMweb expects. See docs/dicomweb.md.
"""

from __future__ import annotations

import functools
import io
import json
from collections.abc import Callable
from typing import Any, BinaryIO

from flask import Blueprint, Response, request

from referral.api.downloads import attachment
from referral.errors import DomainError
from referral.http import multipart_related
from referral.http.context import current_actor, db_session, object_store, settings
from referral.imaging import frames
from referral.services import dicomweb, intake

DICOMWEB_PREFIX = "/dicomweb"
DICOM_JSON = "application/dicom+json"
DICOM = "application/dicom"

blp = Blueprint("dicomweb", __name__, url_prefix=DICOMWEB_PREFIX)


class NotAcceptable(DomainError):
    status_code = 406


def base_url() -> str:
    return request.url_root.rstrip("/") + DICOMWEB_PREFIX


def _accept_items() -> list[tuple[str, dict[str, str]]]:
    raw = request.headers.get("Accept", "")
    items = []
    # Commas inside quoted parameter values do not occur in the media types DICOMweb uses.
    for part in raw.split(","):
        if part.strip():
            items.append(multipart_related.media_type(part))
    return items


def _require_accept(*acceptable: str) -> None:
    items = _accept_items()
    if not items:
        return
    wanted = {*acceptable, "*/*", acceptable[0].split("/")[0] + "/*"}
    if not any(kind in wanted and options.get("q", "1") not in ("0", "0.0") for kind, options in items):
        raise NotAcceptable(f"This resource is served as {acceptable[0]}")


def _require_multipart_dicom(syntaxes: set[str]) -> None:
    """The Accept header must take multipart/related with application/dicom parts (or anything); a transfer
    syntax named there must be the one the files are stored in, as they are served unchanged."""
    items = _accept_items()
    if not items:
        return
    for kind, options in items:
        if kind in ("*/*", "multipart/*") or (kind == "multipart/related" and
                                              options.get("type", DICOM).lower() in (DICOM, "application/*")):
            syntax = options.get("transfer-syntax")
            if syntax in (None, "*") or {syntax} == syntaxes:
                return
    raise NotAcceptable('Instances are served as multipart/related; type="application/dicom", each in the transfer '
                        "syntax it was stored in (ask with transfer-syntax=* or none)")


def _json(body: Any, status: int = 200, warnings: list[str] | None = None) -> Response:
    response = Response(json.dumps(body, ensure_ascii=False), status=status, mimetype=DICOM_JSON)
    response.headers["Cache-Control"] = "no-store"
    for text in warnings or []:
        safe = text.encode("ascii", "replace").decode().replace('"', "'")
        response.headers.add("Warning", f'299 {request.host}: "{safe}"')
    return response


# --- QIDO-RS ---------------------------------------------------------------------------------------------------


def _search(level: str, study: str | None = None, series: str | None = None) -> Response:
    _require_accept(DICOM_JSON, "application/json")
    query = dicomweb.parse_query(level, request.args.items(multi=True), study=study, series=series)
    results = dicomweb.search(db_session(), current_actor(), query, base_url())
    warnings = [f"The {name} parameter is not supported; it was ignored" for name in query.ignored]
    return _json(results, warnings=warnings)


@blp.get("/studies")
def search_studies() -> Response:
    return _search(dicomweb.STUDY)


@blp.get("/series")
def search_all_series() -> Response:
    return _search(dicomweb.SERIES)


@blp.get("/instances")
def search_all_instances() -> Response:
    return _search(dicomweb.INSTANCE)


@blp.get("/studies/<study>/series")
def search_series(study: str) -> Response:
    return _search(dicomweb.SERIES, study)


@blp.get("/studies/<study>/instances")
def search_study_instances(study: str) -> Response:
    return _search(dicomweb.INSTANCE, study)


@blp.get("/studies/<study>/series/<series>/instances")
def search_series_instances(study: str, series: str) -> Response:
    return _search(dicomweb.INSTANCE, study, series)


# --- WADO-RS ---------------------------------------------------------------------------------------------------


def _retrieve(study: str, series: str | None = None, sop: str | None = None) -> Response:
    instances = dicomweb.retrieve(db_session(), current_actor(), study, series, sop,
                                  acceptable=_require_multipart_dicom)
    store = object_store()
    openers: list[Callable[[], BinaryIO]]
    if len(instances) == 1:
        # One instance: opened now, so that a file lost from the store is a 503, not a cut-off body.
        opened = dicomweb.open_instance(store, instances[0])
        openers = [lambda: opened]
    else:
        openers = [functools.partial(dicomweb.open_instance, store, instance) for instance in instances]
    boundary = multipart_related.new_boundary()
    parts = [(_part_type(instance.header.transfer_syntax_uid), opener)
             for instance, opener in zip(instances, openers, strict=True)]
    response = Response(multipart_related.stream_parts(boundary, parts), direct_passthrough=True,
                        content_type=f'multipart/related; type="{DICOM}"; boundary={boundary}')
    response.headers["Cache-Control"] = "no-store"
    return response


def _part_type(syntax: str | None) -> str:
    return f"{DICOM}; transfer-syntax={syntax}" if syntax else DICOM


@blp.get("/studies/<study>")
def retrieve_study(study: str) -> Response:
    return _retrieve(study)


@blp.get("/studies/<study>/series/<series>")
def retrieve_series(study: str, series: str) -> Response:
    return _retrieve(study, series)


@blp.get("/studies/<study>/series/<series>/instances/<sop>")
def retrieve_instance(study: str, series: str, sop: str) -> Response:
    return _retrieve(study, series, sop)


def _metadata(study: str, series: str | None = None, sop: str | None = None) -> Response:
    _require_accept(DICOM_JSON, "application/json")
    return _json(dicomweb.metadata(db_session(), object_store(), current_actor(), study, series, sop))


@blp.get("/studies/<study>/metadata")
def study_metadata(study: str) -> Response:
    return _metadata(study)


@blp.get("/studies/<study>/series/<series>/metadata")
def series_metadata(study: str, series: str) -> Response:
    return _metadata(study, series)


@blp.get("/studies/<study>/series/<series>/instances/<sop>/metadata")
def instance_metadata(study: str, series: str, sop: str) -> Response:
    return _metadata(study, series, sop)


def _jpeg(study: str, series: str | None, sop: str | None, which: str) -> Response:
    _require_accept("image/jpeg")
    body = dicomweb.rendition(db_session(), object_store(), current_actor(), study, series, sop, which)
    response = attachment(body, content_type="image/jpeg", filename=f"{which}.jpg")
    response.headers["Content-Disposition"] = f'inline; filename="{which}.jpg"'
    return response


@blp.get("/studies/<study>/series/<series>/instances/<sop>/rendered")
def instance_rendered(study: str, series: str, sop: str) -> Response:
    return _jpeg(study, series, sop, "preview")


OCTET_STREAM = "application/octet-stream"


def _frame_numbers(text: str) -> list[int]:
    parts = [part.strip() for part in text.split(",")]
    if not parts or len(parts) > 1000 or not all(part.isdigit() and int(part) >= 1 for part in parts):
        raise dicomweb.BadQuery("Frames are numbered from 1 and listed with commas, as in frames/1,2")
    return [int(part) for part in parts]


def _require_frames_accept(syntax: str) -> None:
    """multipart/related with application/octet-stream parts (or anything); frames are served in ``syntax``, so
    a transfer syntax named must be that one or *; none named means uncompressed."""
    items = _accept_items()
    if not items:
        items = [("multipart/related", {"type": OCTET_STREAM})]
    for kind, options in items:
        if kind in ("*/*", "multipart/*") or (kind == "multipart/related" and
                                              options.get("type", OCTET_STREAM).lower() in (OCTET_STREAM, "*/*")):
            asked = options.get("transfer-syntax")
            if asked == "*" or asked == syntax or (asked is None and syntax == frames.EXPLICIT_LE):
                return
    raise NotAcceptable(f'Frames of this instance are served as multipart/related; type="{OCTET_STREAM}" in '
                        f"transfer syntax {syntax} (ask with transfer-syntax=* or that syntax)")


@blp.get("/studies/<study>/series/<series>/instances/<sop>/frames/<frame_list>")
def instance_frames(study: str, series: str, sop: str, frame_list: str) -> Response:
    numbers = _frame_numbers(frame_list)
    result, syntax = dicomweb.retrieve_frames(db_session(), object_store(), current_actor(), study, series, sop,
                                              numbers, acceptable=_require_frames_accept)
    boundary = multipart_related.new_boundary()
    part_type = f"{OCTET_STREAM}; transfer-syntax={syntax}"
    parts = [(part_type, functools.partial(io.BytesIO, frame)) for frame in result]
    response = Response(multipart_related.stream_parts(boundary, parts), direct_passthrough=True,
                        content_type=f'multipart/related; type="{OCTET_STREAM}"; boundary={boundary}')
    response.headers["Cache-Control"] = "no-store"
    return response


@blp.get("/studies/<study>/series/<series>/instances/<sop>/frames/1/rendered")
def frame_rendered(study: str, series: str, sop: str) -> Response:
    return _jpeg(study, series, sop, "preview")


@blp.get("/studies/<study>/series/<series>/instances/<sop>/thumbnail")
def instance_thumbnail(study: str, series: str, sop: str) -> Response:
    return _jpeg(study, series, sop, "thumbnail")


@blp.get("/studies/<study>/series/<series>/thumbnail")
def series_thumbnail(study: str, series: str) -> Response:
    return _jpeg(study, series, None, "thumbnail")


@blp.get("/studies/<study>/thumbnail")
def study_thumbnail(study: str) -> Response:
    return _jpeg(study, None, None, "thumbnail")


# --- STOW-RS ---------------------------------------------------------------------------------------------------


def _store(study: str | None) -> Response:
    configured = settings()
    parts = multipart_related.read_parts(request.stream, request.headers.get("Content-Type"), part_type=DICOM,
                                         limit=configured.max_upload_bytes, directory=configured.upload_tmp_dir)
    session, store, actor = db_session(), object_store(), current_actor()
    try:
        outcomes = [
            dicomweb.store_instance(session, store, actor,
                                    intake.Upload(stream=part.spool, size=part.spool.size,  # type: ignore[arg-type]
                                                  sha256=part.spool.sha256, filename=None),
                                    study=study)
            for part in parts
        ]
    finally:
        multipart_related.close_parts(parts)
    status, body = dicomweb.store_response(outcomes, base_url())
    reasons = list(dict.fromkeys(o.reason for o in outcomes if o.reason))
    return _json(body, status, warnings=reasons)


@blp.post("/studies")
def store_instances() -> Response:
    return _store(None)


@blp.post("/studies/<study>")
def store_study_instances(study: str) -> Response:
    return _store(study)
