from __future__ import annotations

import io
import uuid
from typing import Any

from flask import Response

from referral.api.downloads import attachment
from referral.api.parsing import Blueprint
from referral.http.context import current_actor, db_session, object_store
from referral.services import documents

blp = Blueprint("documents", __name__, description="The capture note and the interpretation report, HTML or PDF")

# The HTML carries user and DICOM text (escaped); should a browser still open it, it runs nothing and loads
# nothing but its own inline pictures and styles.
HTML_POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

_NAME_PARAMETER = {
    "in": "path",
    "name": "name",
    "required": True,
    "schema": {"type": "string", "enum": list(documents.NAMES)},
}

_DESCRIPTION = "the document as an attachment: PDF for the .pdf names, HTML for the .html names"


@blp.route("/referrals/<uuid:referral_id>/documents/<string:name>", parameters=[_NAME_PARAMETER])
@blp.response(200, description=_DESCRIPTION)
@blp.doc(responses={"200": {"description": _DESCRIPTION, "content": {
    "application/pdf": {"schema": {"type": "string", "format": "binary"}},
    "text/html": {"schema": {"type": "string"}},
}}})
def read_document(referral_id: uuid.UUID, name: str) -> Any:
    """The capture note (for the capturing office's claims) or the signed report, as HTML or PDF (audited)"""
    body, content_type, filename = documents.read_document(db_session(), object_store(), current_actor(),
                                                           referral_id, name)
    return document_response(body, content_type, filename)


def document_response(body: bytes, content_type: str, filename: str) -> Response:
    """A rendered document as an attachment; HTML also under a policy that lets it run and load nothing."""
    response = attachment(io.BytesIO(body), content_type=content_type, filename=filename, size=len(body))
    # Werkzeug appends a charset to every text/* type it is given, even one that already names it.
    response.headers["Content-Type"] = content_type
    if content_type == documents.HTML_CONTENT_TYPE:
        response.headers["Content-Security-Policy"] = HTML_POLICY
    return response
