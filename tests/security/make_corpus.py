"""Writes the bad-input corpus under tests/corpus/ from the deterministic samples in tests/support/samples.py.

The corpus is committed, so it is what the tests read; run ``python -m tests.security.make_corpus`` after
changing a sample to rewrite it. ``tests/corpus/manifest.json`` (written by hand) says where each file is
sent and what the server must answer.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from pydicom.dataset import Dataset

from tests.support import samples

CORPUS = Path(__file__).resolve().parent.parent / "corpus"

# Markup placed in the DICOM header of a file that is otherwise the referral patient's own radiograph. The
# patient name still matches Jane Doe (only letters and digits are compared), so the file is stored.
PATIENT_NAME_MARKUP = "<svg onload=alert(1)>"
OPERATOR_MARKUP = "<script>alert(2)</script>"
STUDY_MARKUP = "<img src=x onerror=alert(3)>"
INSTITUTION_MARKUP = "</title><script>alert(4)</script>"


def _script_in_text_fields() -> bytes:
    def mutate(ds: Dataset) -> None:
        ds.StudyDescription = STUDY_MARKUP
        ds.InstitutionName = INSTITUTION_MARKUP
        ds.SeriesDescription = OPERATOR_MARKUP

    return samples.dicom_bytes(patient_name="Doe^Jane" + PATIENT_NAME_MARKUP, operator=OPERATOR_MARKUP + "^Op",
                               mutate=mutate)


def _nested(opening: str, closing: str, depth: int = 5000) -> bytes:
    return (opening * depth + "1" + closing * depth).encode()


def _json(value: object) -> bytes:
    return json.dumps(value, indent=1).encode() + b"\n"


PATIENT = {"first_name": "Jane", "last_name": "Doe", "birth_date": "1980-01-01", "sex": "F", "state": "CA"}

FILES: dict[str, Callable[[], bytes]] = {
    # image uploads: disguised types (415)
    "html-disguised-as-radiograph.jpg": samples.html_bytes,
    "svg-disguised-as-photo.png": samples.svg_bytes,
    "exe-disguised-as-photo.jpg": samples.exe_bytes,
    "elf-disguised-as-radiograph.dcm": samples.elf_bytes,
    "zip-disguised-as-study.dcm": samples.zip_bytes,
    "pdf-disguised-as-radiograph.tif": samples.pdf_bytes,
    "gif-photo.gif": samples.gif_bytes,
    "bmp-photo.bmp": samples.bmp_bytes,
    # image uploads: empty, cut off, hostile (422)
    "empty.dcm": lambda: b"",
    "truncated-radiograph.dcm": lambda: samples.truncated(samples.dicom_bytes(rows=48, columns=48)),
    "truncated-photo.jpg": lambda: samples.truncated(samples.jpeg_bytes()),
    "truncated-photo.png": lambda: samples.truncated(samples.png_bytes()),
    "pixel-flood.png": samples.pixel_flood_png,
    "nested-sequences.dcm": samples.deeply_nested_dicom,
    "dicom-without-pixels.dcm": samples.dicom_without_pixels,
    "dicom-of-another-patient.dcm": lambda: samples.dicom_bytes(patient_name="Roe^Richard", birth_date="19750505"),
    "script-in-patient-name.dcm": samples.dicom_with_script_in_name,
    # image uploads: stored, and shown escaped or not at all
    "script-in-dicom-text.dcm": _script_in_text_fields,
    "jpeg-with-trailing-html.jpg": lambda: samples.jpeg_bytes() + samples.html_bytes(),
    # image uploads: hostile file names on a good file
    "filename-path-traversal.png": lambda: samples.png_bytes(8, 8),
    "filename-windows-traversal.png": lambda: samples.png_bytes(8, 9),
    "filename-rtl-override.png": lambda: samples.png_bytes(8, 10),
    "filename-overlong.png": lambda: samples.png_bytes(8, 11),
    "filename-double-extension.png": lambda: samples.png_bytes(8, 12),
    "filename-nul-byte.png": lambda: samples.png_bytes(8, 13),
    "filename-markup.png": lambda: samples.png_bytes(8, 14),
    # consent form uploads
    "consent-html-disguised.pdf": samples.html_bytes,
    "consent-truncated.pdf": lambda: samples.pdf_bytes().replace(b"%%EOF", b""),
    "consent-dicom.dcm": lambda: samples.dicom_bytes(rows=8, columns=8),
    "consent-pixel-flood.png": lambda: samples.pixel_flood_png(60_000, 60_000),
    "consent-empty.pdf": lambda: b"",
    # JSON bodies
    "malformed.json": lambda: b'{"first_name": "Jane", "last_name": "Doe", "birth_date": "1980-',
    "invalid-utf8.json": lambda: b'{"first_name": "J\xff\xfene", "last_name": "Doe"}\n',
    "lone-surrogate.json": lambda: b'{"first_name": "J\\ud800ne", "last_name": "Doe", "birth_date": "1980-01-01", '
                                   b'"sex": "F", "state": "CA"}\n',
    "deeply-nested-array.json": lambda: _nested("[", "]"),
    "deeply-nested-object.json": lambda: _nested('{"a":', "}"),
    "not-an-object.json": lambda: _json([PATIENT]),
    "unknown-fields.json": lambda: _json(dict(PATIENT, organization_id="01a20000-0000-7000-8000-000000000000",
                                              created_by="01a20000-0000-7000-8000-000000000001",
                                              status="deleted")),
    "wrong-types-patient.json": lambda: _json({"first_name": ["Jane"], "last_name": {"text": "Doe"},
                                               "birth_date": 19800101, "sex": True, "state": 6}),
    "wrong-types-referral.json": lambda: _json({"patient_id": 12, "referring_provider_id": None,
                                                "specialty": ["endodontics"], "reason": 42, "teeth": {"19": True},
                                                "urgency": 1, "mode": False}),
    "huge-strings-patient.json": lambda: _json(dict(PATIENT, first_name="J" * 20_000, last_name="D" * 20_000)),
    "huge-strings-referral.json": lambda: _json({
        "patient_id": "01a20000-0000-7000-8000-000000000002", "referring_provider_id":
        "01a20000-0000-7000-8000-000000000003", "specialty": "endodontics", "reason": "pain " * 4_000,
        "teeth": ["19"] * 2_000, "urgency": "urgent", "mode": "asynchronous"}),
    "control-characters.json": lambda: _json(dict(PATIENT, last_name="Do\u0000e", first_name="Ja\u001bne")),
    "huge-number.json": lambda: b'{"image_retention_days": 1e400}\n',
    "fee-schedule-nan.json": lambda: b'{"D0140": NaN, "D0220": Infinity}\n',
    "fee-schedule-too-many-codes.json": lambda: _json({f"D{n:04d}": "1.00" for n in range(1001, 3002)}),
    # query strings
    "search-with-nul.txt": lambda: b"Do\x00e",
    "search-overlong.txt": lambda: b"a" * 5000,
}


def main() -> None:
    CORPUS.mkdir(exist_ok=True)
    for name, make in FILES.items():
        (CORPUS / name).write_bytes(make())


if __name__ == "__main__":
    main()
