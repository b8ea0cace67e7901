"""Deterministic sample files, good and hostile, shared by every test suite.

Everything is generated in code so the repository carries no binary fixtures
and no real patient data. Identical arguments always give identical bytes.
"""

from __future__ import annotations

import io
import struct
import sys
import zipfile
import zlib
from array import array
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pydicom
from PIL import Image, ImageCms
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.sr._snomed_dict import mapping as snomed_rt_mapping
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code
from pydicom.uid import (
    UID,
    DigitalIntraOralXRayImageStorageForPresentation,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
    generate_uid,
)

from referral import dental

INTRAORAL_FOR_PRESENTATION = str(DigitalIntraOralXRayImageStorageForPresentation)
_IMPLEMENTATION_UID = "1.2.826.0.1.3680043.8.498.1"
_TRANSFER_SYNTAXES = {
    "explicit_le": ExplicitVRLittleEndian,
    "implicit_le": ImplicitVRLittleEndian,
    "explicit_be": ExplicitVRBigEndian,
}
_TOOTH_SCHEMES = ("SCT", "SRT", "ISO3950")


def _uid(*parts: object) -> str:
    # Seeded UIDs keep the bytes reproducible across runs.
    return str(generate_uid(entropy_srcs=[str(part) for part in parts]))


def _tooth_item(tooth: str, scheme: str) -> Dataset:
    item = Dataset()
    sct = dental.snomed_from_universal(tooth)
    if scheme == "ISO3950":
        item.CodeValue = dental.fdi_from_universal(tooth)
        item.CodingSchemeDesignator = "ISO3950"
        item.CodeMeaning = f"Tooth {item.CodeValue}"
        return item
    if sct is None:
        raise ValueError(f"tooth {tooth} has no SNOMED code")
    # Teeth added to SNOMED CT after SNOMED RT was retired have no RT id; old
    # writers then put the CT id under "SRT", which readers must tolerate.
    item.CodeValue = snomed_rt_mapping["SCT"].get(sct, sct) if scheme == "SRT" else sct
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = f"Tooth {tooth}"
    return item


def _code_item(code: Code) -> Dataset:
    item = Dataset()
    item.CodeValue = code.value
    item.CodingSchemeDesignator = code.scheme_designator
    item.CodeMeaning = code.meaning
    return item


def _pixels(rows: int, columns: int, fill: int | None, *, big_endian: bool = False) -> bytes:
    if fill is None:
        values = array(
            "H", ((row * columns + column) % 4096 for row in range(rows) for column in range(columns))
        )
    else:
        values = array("H", [fill]) * (rows * columns)
    if (sys.byteorder == "big") != big_endian:
        values.byteswap()
    return values.tobytes()


def _dataset(
    *,
    patient_name: str,
    patient_id: str,
    birth_date: str,
    modality: str,
    sop_class: str,
    teeth: Iterable[str],
    tooth_scheme: str,
    kvp: float | None,
    exposure_time_ms: int | None,
    tube_current_ma: int | None,
    acquisition: str | None,
    rows: int,
    columns: int,
    operator: str | None,
    transfer_syntax: str,
) -> Dataset:
    if tooth_scheme not in _TOOTH_SCHEMES:
        raise ValueError(f"tooth_scheme must be one of {_TOOTH_SCHEMES}")
    seed = (patient_id, modality, acquisition, rows, columns)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = UID(_uid("instance", *seed))
    meta.TransferSyntaxUID = UID(transfer_syntax)
    meta.ImplementationClassUID = UID(_IMPLEMENTATION_UID)

    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = _uid("study", *seed)
    ds.SeriesInstanceUID = _uid("series", *seed)
    ds.Modality = modality
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.PatientBirthDate = birth_date
    if operator is not None:
        ds.OperatorsName = operator
    if acquisition is not None:
        ds.AcquisitionDateTime = acquisition
    if kvp is not None:
        ds.KVP = kvp
    if exposure_time_ms is not None:
        ds.ExposureTime = exposure_time_ms
    if tube_current_ma is not None:
        ds.XRayTubeCurrent = tube_current_ma
    teeth = [dental.normalize_tooth(tooth) for tooth in teeth]
    if teeth:
        arches = {dental.tooth_arch(tooth) for tooth in teeth}
        region = (
            codes.SCT.Maxilla
            if arches == {"maxillary"}
            else (codes.SCT.Mandible if arches == {"mandibular"} else codes.SCT.JawRegion)
        )
        ds.AnatomicRegionSequence = [_code_item(region)]
        ds.PrimaryAnatomicStructureSequence = [_tooth_item(tooth, tooth_scheme) for tooth in teeth]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = columns
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.WindowCenter = 2048
    ds.WindowWidth = 4096
    return ds


def _encode(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def dicom_bytes(
    *,
    patient_name: str = "Doe^Jane",
    patient_id: str = "P-1",
    birth_date: str = "19800101",
    modality: str = "IO",
    sop_class: str = INTRAORAL_FOR_PRESENTATION,
    teeth: Iterable[str] = ("19",),
    kvp: float | None = 70.0,
    exposure_time_ms: int | None = 120,
    tube_current_ma: int | None = 7,
    acquisition: str | None = "20260101120000",
    rows: int = 64,
    columns: int = 64,
    operator: str | None = "Smith^Ann",
    pixel_fill: int | None = None,
    tooth_scheme: str = "SCT",
    transfer_syntax: str = "explicit_le",
    with_pixels: bool = True,
    mutate: Callable[[Dataset], None] | None = None,
) -> bytes:
    """A valid DICOM Part 10 intra-oral radiograph: 16-bit MONOCHROME2, teeth as codes.

    ``tooth_scheme`` picks how teeth are coded ("SCT", legacy "SRT" or
    "ISO3950"); ``transfer_syntax`` is "explicit_le", "implicit_le" or
    "explicit_be"; ``mutate`` may edit the dataset just before encoding.
    """
    syntax = _TRANSFER_SYNTAXES[transfer_syntax]
    ds = _dataset(
        patient_name=patient_name,
        patient_id=patient_id,
        birth_date=birth_date,
        modality=modality,
        sop_class=sop_class,
        teeth=teeth,
        tooth_scheme=tooth_scheme,
        kvp=kvp,
        exposure_time_ms=exposure_time_ms,
        tube_current_ma=tube_current_ma,
        acquisition=acquisition,
        rows=rows,
        columns=columns,
        operator=operator,
        transfer_syntax=syntax,
    )
    if with_pixels:
        ds.PixelData = _pixels(rows, columns, pixel_fill, big_endian=syntax == ExplicitVRBigEndian)
        ds["PixelData"].VR = "OW"
    if mutate is not None:
        mutate(ds)
    return _encode(ds)


_CHUNK = 1024 * 1024


def write_large_dicom(path: str | Path, megabytes: int) -> int:
    """Write a valid ~``megabytes`` MB DICOM file, streaming the pixels; return its size."""
    columns = 2048
    row_bytes = columns * 2
    rows = max(1, -(-megabytes * 1024 * 1024 // row_bytes))
    ds = _dataset(
        patient_name="Doe^Jane",
        patient_id="P-LARGE",
        birth_date="19800101",
        modality="IO",
        sop_class=INTRAORAL_FOR_PRESENTATION,
        teeth=("19",),
        tooth_scheme="SCT",
        kvp=70.0,
        exposure_time_ms=120,
        tube_current_ma=7,
        acquisition="20260101120000",
        rows=rows,
        columns=columns,
        operator="Smith^Ann",
        transfer_syntax=ExplicitVRLittleEndian,
    )
    length = rows * row_bytes
    # Pixel Data is the last element, so the header pydicom writes can simply
    # be followed by a hand-written element header and the streamed pixels.
    pattern = bytes(range(256)) * (_CHUNK // 256)
    with open(path, "wb") as out:
        pydicom.dcmwrite(out, ds, enforce_file_format=True)
        out.write(struct.pack("<HH2sHL", 0x7FE0, 0x0010, b"OW", 0, length))
        remaining = length
        while remaining:
            chunk = pattern[: min(remaining, _CHUNK)]
            out.write(chunk)
            remaining -= len(chunk)
        return out.tell()


def encapsulated_dicom_bytes(*, rows: int = 48, columns: int = 64) -> bytes:
    """A DICOM file whose pixels are an encapsulated baseline JPEG (undefined-length Pixel Data)."""
    ds = _dataset(
        patient_name="Doe^Jane",
        patient_id="P-ENC",
        birth_date="19800101",
        modality="IO",
        sop_class=INTRAORAL_FOR_PRESENTATION,
        teeth=("8", "9"),
        tooth_scheme="SCT",
        kvp=65.0,
        exposure_time_ms=100,
        tube_current_ma=7,
        acquisition="20260101120000",
        rows=rows,
        columns=columns,
        operator=None,
        transfer_syntax=JPEGBaseline8Bit,
    )
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.WindowCenter = 128
    ds.WindowWidth = 256
    frame = _raster(columns, rows, "JPEG", mode="L")
    ds.PixelData = encapsulate([frame])
    ds["PixelData"].VR = "OB"
    return _encode(ds)


def dicom_without_pixels() -> bytes:
    return dicom_bytes(with_pixels=False)


def dicom_with_script_in_name() -> bytes:
    return dicom_bytes(patient_name="Doe^<script>alert(1)</script>")


def dicom_with_many_elements(count: int = 20_001) -> bytes:
    """A DICOM file whose Content Sequence holds ``count`` one-element items."""

    def add_items(ds: Dataset) -> None:
        items = []
        for index in range(count // 2 + 1):
            item = Dataset()
            item.ValueType = "TEXT" if index % 2 else "CODE"
            items.append(item)
        ds.ContentSequence = items

    return dicom_bytes(mutate=add_items)


def _element_le(group: int, element: int, vr: bytes, value: bytes) -> bytes:
    if len(value) % 2:
        value += b" "
    return struct.pack("<HH2sH", group, element, vr, len(value)) + value


def deeply_nested_dicom(depth: int = 200) -> bytes:
    """A Part 10 file whose dataset nests undefined-length sequences ``depth`` levels deep.

    pydicom writes nested datasets recursively, so the nesting is written by
    hand and spliced between the pydicom-written header and the pixels.
    """
    rows = columns = 8
    head = dicom_bytes(rows=rows, columns=columns, with_pixels=False)
    undefined = 0xFFFFFFFF
    opening = struct.pack("<HH2sHL", 0x0040, 0xA730, b"SQ", 0, undefined) + struct.pack(
        "<HHL", 0xFFFE, 0xE000, undefined
    )
    closing = struct.pack("<HHL", 0xFFFE, 0xE00D, 0) + struct.pack("<HHL", 0xFFFE, 0xE0DD, 0)
    innermost = _element_le(0x0040, 0xA040, b"CS", b"TEXT")
    pixels = _pixels(rows, columns, None)
    pixel_element = struct.pack("<HH2sHL", 0x7FE0, 0x0010, b"OW", 0, len(pixels)) + pixels
    return head + opening * depth + innermost + closing * depth + pixel_element


# --- raster images ----------------------------------------------------------------


def _gradient(width: int, height: int, mode: str) -> Image.Image:
    image = Image.linear_gradient("L").resize((width, height))
    return image.convert(mode)


def _raster(width: int, height: int, image_format: str, *, mode: str = "RGB", **params: Any) -> bytes:
    buffer = io.BytesIO()
    _gradient(width, height, mode).save(buffer, format=image_format, **params)
    return buffer.getvalue()


# GPS IFD: latitude 40 deg 26' 46" N, longitude 79 deg 58' 56" W.
_GPS_IFD = {
    1: "N",
    2: (40.0, 26.0, 46.0),
    3: "W",
    4: (79.0, 58.0, 56.0),
}
CAMERA_MAKE = "Acme Dental Optics"
CAMERA_MODEL = "IntraCam X9"
PHOTO_COMMENT = b"operator: Smith^Ann, chair 3"
PHOTO_XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b'<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Make="Acme Dental Optics"/>'
    b"</rdf:RDF></x:xmpmeta>"
)


def jpeg_bytes(
    width: int = 64, height: int = 48, *, exif_orientation: int | None = None, gps: bool = False
) -> bytes:
    """A baseline JPEG photo, optionally with an EXIF orientation and a GPS block."""
    exif = Image.Exif()
    if exif_orientation is not None:
        exif[0x0112] = exif_orientation
    if gps:
        exif[0x8825] = dict(_GPS_IFD)
    params: dict[str, Any] = {"quality": 90}
    if exif_orientation is not None or gps:
        params["exif"] = exif.tobytes()
    return _raster(width, height, "JPEG", **params)


def camera_jpeg_bytes(width: int = 96, height: int = 64, *, exif_orientation: int = 6) -> bytes:
    """A phone or intra-oral camera photo carrying everything a preview must drop: EXIF
    orientation, GPS position, make and model, an ICC profile, XMP and a comment.

    The left half is dark and the right half light, so rotation can be seen in the pixels.
    """
    exif = Image.Exif()
    exif[0x0112] = exif_orientation
    exif[0x010F] = CAMERA_MAKE
    exif[0x0110] = CAMERA_MODEL
    exif[0x8825] = dict(_GPS_IFD)
    image = Image.new("RGB", (width, height), (30, 30, 30))
    image.paste((230, 230, 230), (width // 2, 0, width, height))
    icc = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    # The profile header carries its creation time (bytes 24-35); fixed, so the bytes repeat.
    icc[24:36] = struct.pack(">6H", 2026, 1, 1, 0, 0, 0)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90, exif=exif.tobytes(), icc_profile=bytes(icc), xmp=PHOTO_XMP,
               comment=PHOTO_COMMENT)
    return buffer.getvalue()


def gray16_bytes(image_format: str = "PNG", width: int = 64, height: int = 48, *, maximum: int = 65535) -> bytes:
    """A 16-bit grayscale sensor export: a left-to-right ramp from 0 to ``maximum``."""
    ramp = array("H", (column * maximum // (width - 1) for column in range(width))) * height
    if sys.byteorder == "big":
        ramp.byteswap()
    image = Image.frombytes("I;16", (width, height), ramp.tobytes())
    buffer = io.BytesIO()
    image.save(buffer, format=image_format)
    return buffer.getvalue()


def heic_bytes(width: int = 96, height: int = 64) -> bytes:
    """A phone-style HEIC photo: dark left half, light right half. Made with pillow-heif's encoder (a test-only
    dependency; the server reads HEIC with the decode-only pi-heif)."""
    import pillow_heif

    image = Image.new("RGB", (width, height), (30, 60, 90))
    image.paste((230, 200, 170), (width // 2, 0, width, height))
    buffer = io.BytesIO()
    pillow_heif.from_pillow(image).save(buffer, quality=95)
    return buffer.getvalue()


def webp_bytes(width: int = 96, height: int = 64, *, lossless: bool = True) -> bytes:
    image = Image.new("RGB", (width, height), (30, 60, 90))
    image.paste((230, 200, 170), (width // 2, 0, width, height))
    buffer = io.BytesIO()
    image.save(buffer, format="WEBP", lossless=lossless, quality=90)
    return buffer.getvalue()


def png_bytes(width: int = 64, height: int = 48) -> bytes:
    return _raster(width, height, "PNG")


def tiff_bytes(width: int = 64, height: int = 48) -> bytes:
    return _raster(width, height, "TIFF", compression="raw")


def gif_bytes(width: int = 16, height: int = 16) -> bytes:
    return _raster(width, height, "GIF", mode="L")


def bmp_bytes(width: int = 16, height: int = 16) -> bytes:
    return _raster(width, height, "BMP")


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">L", len(data)) + kind + data + struct.pack(">L", zlib.crc32(kind + data))


def pixel_flood_png(width: int = 50_000, height: int = 50_000) -> bytes:
    """A tiny PNG whose (CRC-valid) IHDR claims ``width`` x ``height`` grey pixels."""
    header = struct.pack(">LLBBBBB", width, height, 8, 0, 0, 0, 0)
    data = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", data)
        + _png_chunk(b"IEND", b"")
    )


# --- hostile and non-image inputs ---------------------------------------------------


def truncated(data: bytes, keep: float = 0.5) -> bytes:
    """The first ``keep`` fraction of ``data``."""
    return data[: int(len(data) * keep)]


def html_bytes() -> bytes:
    return b"<!DOCTYPE html>\n<html><body><script>alert(document.cookie)</script></body></html>\n"


def svg_bytes() -> bytes:
    return (
        b'<?xml version="1.0"?>\n'
        b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
        b"<script>alert(1)</script><rect width='10' height='10'/></svg>\n"
    )


def zip_bytes(member: str = "radiograph.dcm") -> bytes:
    """A ZIP archive (as an attacker might name ``upload.dcm``) holding a real DICOM file."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        info = zipfile.ZipInfo(member, date_time=(2026, 1, 1, 0, 0, 0))
        archive.writestr(info, dicom_bytes())
    return buffer.getvalue()


def exe_bytes() -> bytes:
    """A minimal MZ/PE-looking executable header (not runnable)."""
    dos = bytearray(0x80)
    dos[0:2] = b"MZ"
    struct.pack_into("<L", dos, 0x3C, 0x80)
    coff = struct.pack("<4sHHLLLHH", b"PE\x00\x00", 0x8664, 0, 0, 0, 0, 0, 0x22)
    return bytes(dos) + coff + b"\x00" * 256


def elf_bytes() -> bytes:
    return b"\x7fELF\x02\x01\x01" + b"\x00" * 9 + struct.pack("<HHL", 2, 0x3E, 1) + b"\x00" * 200


def pdf_bytes() -> bytes:
    return b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
