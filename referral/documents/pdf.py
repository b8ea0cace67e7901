"""HTML to PDF with WeasyPrint, cut off from the network and the file system."""

from __future__ import annotations

import logging
from typing import Any

from PIL import ImageFile

from referral.errors import ServiceUnavailable

log = logging.getLogger(__name__)


class RefusedURL(ValueError):
    """A document asked for something outside itself."""


def _load() -> tuple[Any, type[Any]] | None:
    """WeasyPrint's HTML class and a fetcher class for it, or None when it cannot be loaded.

    WeasyPrint loads Pango when imported. A server without Pango should still start and serve everything
    else, HTML documents included, so a failure here only takes PDFs away.
    """
    truncated = ImageFile.LOAD_TRUNCATED_IMAGES
    try:
        from weasyprint import HTML
        from weasyprint.urls import URLFetcher
    except (ImportError, OSError) as exc:
        log.error("PDF documents are unavailable: WeasyPrint could not be loaded (%s)", type(exc).__name__)
        return None
    finally:
        # Importing WeasyPrint switches on Pillow's process-wide acceptance of truncated images; intake
        # depends on a truncated upload being refused.
        ImageFile.LOAD_TRUNCATED_IMAGES = truncated

    class DataOnlyFetcher(URLFetcher):
        """Resolves ``data:`` URIs and nothing else.

        The HTML carries text that patients' files and users supplied. It is escaped, but should anything
        ever slip through, a ``file:`` or ``http:`` reference must not let a document read the server's
        disk or reach an internal address while it is rendered.
        """

        def __init__(self) -> None:
            super().__init__(allowed_protocols={"data"}, allow_redirects=False, timeout=1)

        def fetch(self, url: str, headers: Any = None) -> Any:
            if not url.lstrip().lower().startswith("data:"):
                raise RefusedURL("only data: URIs are resolved in documents")
            return super().fetch(url, headers)

    return HTML, DataOnlyFetcher


# Loaded with the application rather than on the first PDF: the import flips that Pillow flag for a moment,
# and at start-up no request thread can be inspecting an upload meanwhile.
_WEASYPRINT = _load()


def _weasyprint() -> tuple[Any, type[Any]]:
    if _WEASYPRINT is None:
        raise ServiceUnavailable("PDF documents cannot be made on this server; the HTML version of the same "
                                 "document is available")
    return _WEASYPRINT


def data_only_fetcher() -> Any:
    """The URL fetcher every PDF is rendered with."""
    return _weasyprint()[1]()


def to_pdf(html: str) -> bytes:
    html_class, _ = _weasyprint()
    # No base_url: a relative reference then has nothing to resolve against either.
    pdf: bytes = html_class(string=html, url_fetcher=data_only_fetcher()).write_pdf()
    return pdf


def to_pdf_pages(documents: list[str]) -> bytes:
    """Several HTML documents laid out one after another into one PDF, each keeping its own page layout."""
    html_class, _ = _weasyprint()
    rendered = [html_class(string=html, url_fetcher=data_only_fetcher()).render() for html in documents]
    pages = [page for document in rendered for page in document.pages]
    pdf: bytes = rendered[0].copy(pages).write_pdf()
    return pdf
