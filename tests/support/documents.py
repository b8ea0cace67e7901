"""Reading the documents the server prints: the text of a PDF, and what a reader sees of HTML."""

from __future__ import annotations

import html
import io
import re

from pypdf import PdfReader


def pdf_text(data: bytes) -> str:
    assert data.startswith(b"%PDF-")
    return "\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(data)).pages)


def squeezed(text: str) -> str:
    """Without whitespace: a PDF may break a long hash or a sentence across lines."""
    return "".join(text.split())


def visible(text: str) -> str:
    """What a reader sees: tags dropped and entities decoded (PDF text passes through unchanged)."""
    return html.unescape(re.sub(r"<[^>]+>", " ", text))
