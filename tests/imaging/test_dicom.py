from __future__ import annotations

import io
import json
import struct
import time
import warnings
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pydicom
import pytest
from pydicom import config, dcmread
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.uid import DeflatedExplicitVRLittleEndian, DigitalXRayImageStorageForPresentation

from referral.imaging import dicom as dicom_module
from referral.imaging.dicom import MAX_ELEMENTS, MAX_SEQUENCE_DEPTH, MAX_TEXT_LENGTH, DicomInfo, read_dicom
from referral.imaging.inspect import DamagedImage, UnsupportedImageType
from tests.support import samples

VL_PHOTOGRAPHIC_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.77.1.4"


def read(data: bytes) -> DicomInfo:
    return read_dicom(io.BytesIO(data), len(data))


def unchecked(tag: int, vr: str, value: object) -> DataElement:
    """An element pydicom would refuse to build, as hostile or sloppy writers produce."""
    return DataElement(tag, vr, value, validation_mode=config.IGNORE)


# --- what is read -----------------------------------------------------------------


def test_the_default_sample_is_read_field_by_field() -> None:
    info = read(samples.dicom_bytes())
    assert info.modality == "IO"
    assert info.sop_class_uid == samples.INTRAORAL_FOR_PRESENTATION
    assert info.transfer_syntax_uid == "1.2.840.10008.1.2.1"
    assert info.presentation_intent == "FOR PRESENTATION"
    assert info.acquisition_datetime == datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert info.kvp == 70.0
    assert info.exposure_time_ms == 120.0
    assert info.tube_current_ma == 7.0
    assert info.operators_name == "Smith^Ann"
    assert info.patient_name == "Doe^Jane"
    assert (info.patient_family_name, info.patient_given_name) == ("Doe", "Jane")
    assert info.patient_id == "P-1"
    assert info.patient_birth_date == date(1980, 1, 1)
    assert info.teeth == ["19"]
    assert info.anatomic_region == "Mandible"
    assert (info.rows, info.columns, info.bits_stored, info.bits_allocated) == (64, 64, 12, 16)
    assert info.photometric == "MONOCHROME2"
    assert (info.window_center, info.window_width) == (2048.0, 4096.0)


def test_sample_arguments_come_back_out() -> None:
    info = read(
        samples.dicom_bytes(
            patient_name="Roe^Richard^Q",
            patient_id="X-9",
            birth_date="20010203",
            kvp=65.5,
            exposure_time_ms=80,
            tube_current_ma=6,
            acquisition="20251231235959",
            rows=16,
            columns=24,
            operator="Lee^Kim",
        )
    )
    assert (info.patient_family_name, info.patient_given_name, info.patient_id) == ("Roe", "Richard", "X-9")
    assert info.patient_birth_date == date(2001, 2, 3)
    assert (info.kvp, info.exposure_time_ms, info.tube_current_ma) == (65.5, 80.0, 6.0)
    assert info.acquisition_datetime == datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert (info.rows, info.columns, info.operators_name) == (16, 24, "Lee^Kim")


@pytest.mark.parametrize("transfer_syntax", ["implicit_le", "explicit_be"])
def test_other_native_transfer_syntaxes_read_the_same(transfer_syntax: str) -> None:
    reference = read(samples.dicom_bytes()).to_record_dict()
    other = read(samples.dicom_bytes(transfer_syntax=transfer_syntax)).to_record_dict()
    assert other.pop("transfer_syntax_uid") != reference.pop("transfer_syntax_uid")
    assert other == reference


def test_a_constant_pixel_fill_is_still_a_valid_file() -> None:
    assert read(samples.dicom_bytes(pixel_fill=0)).rows == 64


def test_encapsulated_pixel_data_is_walked_without_loading_it() -> None:
    info = read(samples.encapsulated_dicom_bytes())
    assert info.transfer_syntax_uid == "1.2.840.10008.1.2.4.50"
    assert info.teeth == ["8", "9"]
    assert info.bits_allocated == 8


# --- teeth ---------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["SCT", "SRT", "ISO3950"])
def test_teeth_coded_in_any_supported_scheme_come_back_as_universal(scheme: str) -> None:
    teeth = ("3", "14", "19", "30", "A", "J", "K", "T")
    assert read(samples.dicom_bytes(teeth=teeth, tooth_scheme=scheme)).teeth == list(teeth)


def test_a_file_without_teeth_reports_none() -> None:
    info = read(samples.dicom_bytes(teeth=()))
    assert info.teeth == []
    assert info.anatomic_region is None


def _code(value: str, scheme: str, meaning: str = "x") -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


def test_unknown_codes_and_schemes_are_ignored_and_duplicates_dropped() -> None:
    def structures(ds: Dataset) -> None:
        ds.PrimaryAnatomicStructureSequence = [
            _code("866006002", "SCT"),  # 19
            _code("38199008", "SCT"),  # "Tooth", not a particular one
            _code("36", "ISO3950"),  # 19 again
            _code("99", "ISO3950"),  # no such tooth
            _code("866006002", "99LOCAL"),
            _code("T-54210", "SRT"),  # 1
            _code("18", "ISO 3950-1984"),  # 1 again, other spelling of the scheme
        ]

    assert read(samples.dicom_bytes(mutate=structures)).teeth == ["19", "1"]


def test_teeth_nested_in_the_anatomic_region_are_found() -> None:
    def nest(ds: Dataset) -> None:
        region = _code("91609006", "SCT", "Mandible")
        region.PrimaryAnatomicStructureSequence = [_code("866005003", "SCT")]  # 30
        ds.AnatomicRegionSequence = [region]
        del ds.PrimaryAnatomicStructureSequence

    info = read(samples.dicom_bytes(mutate=nest))
    assert info.teeth == ["30"]
    assert info.anatomic_region == "Mandible"


def test_sequences_of_undefined_length_are_read_too() -> None:
    def undefined(ds: Dataset) -> None:
        sequence = ds.PrimaryAnatomicStructureSequence
        sequence.is_undefined_length = True
        for item in sequence:
            item.is_undefined_length_sequence_item = True

    assert read(samples.dicom_bytes(teeth=("2", "31"), mutate=undefined)).teeth == ["2", "31"]


# --- dates and times -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("elements", "expected"),
    [
        ({"AcquisitionDateTime": "20260101120000+0200"}, datetime(2026, 1, 1, 10, 0, tzinfo=UTC)),
        ({"AcquisitionDateTime": "20260101120000.25"}, datetime(2026, 1, 1, 12, 0, 0, 250000, tzinfo=UTC)),
        ({"AcquisitionDateTime": "202601"}, datetime(2026, 1, 1, tzinfo=UTC)),
        (
            {"AcquisitionDate": "20260315", "AcquisitionTime": "083000.5"},
            datetime(2026, 3, 15, 8, 30, 0, 500000, tzinfo=UTC),
        ),
        ({"AcquisitionDate": "20260315"}, datetime(2026, 3, 15, tzinfo=UTC)),
        (
            {"AcquisitionDate": "20260315", "AcquisitionTime": "0830", "TimezoneOffsetFromUTC": "-0500"},
            datetime(2026, 3, 15, 13, 30, tzinfo=UTC),
        ),
    ],
    ids=["dt-offset", "dt-fraction", "dt-month", "da-tm", "da-only", "tz-element"],
)
def test_acquisition_time_is_timezone_aware_and_utc_when_unstated(
    elements: dict[str, str], expected: datetime
) -> None:
    def set_time(ds: Dataset) -> None:
        del ds.AcquisitionDateTime
        for keyword, value in elements.items():
            setattr(ds, keyword, value)

    found = read(samples.dicom_bytes(mutate=set_time)).acquisition_datetime
    assert found is not None
    assert found.tzinfo is not None
    assert found == expected


def test_an_explicit_offset_is_kept_as_given() -> None:
    found = read(samples.dicom_bytes(acquisition="20260101120000-0330")).acquisition_datetime
    assert found is not None
    assert found.utcoffset() == -timedelta(hours=3, minutes=30)
    assert found.tzinfo == timezone(-timedelta(hours=3, minutes=30))


@pytest.mark.parametrize(
    ("elements", "offset_stated", "time_stated"),
    [
        ({"AcquisitionDateTime": "20260101093000"}, False, True),
        ({"AcquisitionDateTime": "20260101093000-0800"}, True, True),
        ({"AcquisitionDate": "20260101", "AcquisitionTime": "0930", "TimezoneOffsetFromUTC": "-0800"}, True, True),
        ({"AcquisitionDate": "20260101"}, False, False),
        ({"ContentDate": "20260101", "ContentTime": "093000"}, False, True),
    ],
    ids=["wall-time", "dt-offset", "tz-element", "date-only", "content"],
)
def test_the_header_says_whether_it_gave_a_time_of_day_and_its_offset(
    elements: dict[str, str], offset_stated: bool, time_stated: bool
) -> None:
    def set_time(ds: Dataset) -> None:
        del ds.AcquisitionDateTime
        for keyword, value in elements.items():
            setattr(ds, keyword, value)

    info = read(samples.dicom_bytes(mutate=set_time))
    assert (info.acquisition_offset_stated, info.acquisition_time_stated) == (offset_stated, time_stated)
    assert info.acquisition_datetime is not None


@pytest.mark.parametrize(
    ("name", "matches"),
    [("Lee^Sam", True), ("LEE^SAMUEL", True), ("Lee", True), ("Sam Lee", True), ("Lee^Ann", False),
     ("Rivera^Alex", False), ("", False), ("Lee^Sam=李^山", True)],
)
def test_an_operator_name_names_a_provider_by_family_and_agreeing_given_name(name: str, matches: bool) -> None:
    assert dicom_module.names_person(name, "Sam", "Lee") is matches
    assert dicom_module.reading_order("Lee^Sam^^Dr") == "Dr Sam Lee"


def test_impossible_dates_are_dropped_rather_than_refusing_the_image() -> None:
    def nonsense(ds: Dataset) -> None:
        ds["PatientBirthDate"] = unchecked(0x00100030, "DA", "19801345")
        ds["AcquisitionDateTime"] = unchecked(0x0008002A, "DT", "2026-01-01")

    info = read(samples.dicom_bytes(mutate=nonsense))
    assert info.patient_birth_date is None
    assert info.acquisition_datetime is None
    assert info.rows == 64


# --- technique factors ------------------------------------------------------------------


def test_enhanced_float_technique_values_are_preferred_and_mas_is_found() -> None:
    def enhanced(ds: Dataset) -> None:
        ds.ExposureTimeInms = 95.5
        ds.XRayTubeCurrentInmA = 6.5
        ds.ExposureInuAs = 700

    info = read(samples.dicom_bytes(mutate=enhanced))
    assert (info.exposure_time_ms, info.tube_current_ma) == (95.5, 6.5)
    assert info.exposure_mas == 0.7


def test_integer_exposure_in_mas_is_read() -> None:
    def exposure(ds: Dataset) -> None:
        ds.Exposure = 2

    assert read(samples.dicom_bytes(mutate=exposure)).exposure_mas == 2.0


def test_missing_technique_values_are_none() -> None:
    info = read(samples.dicom_bytes(kvp=None, exposure_time_ms=None, tube_current_ma=None, operator=None))
    assert (info.kvp, info.exposure_time_ms, info.tube_current_ma, info.operators_name) == (None,) * 4


def test_laterality_prefers_image_laterality() -> None:
    def lateral(ds: Dataset) -> None:
        ds.Laterality = "L"
        ds.ImageLaterality = "R"

    assert read(samples.dicom_bytes(mutate=lateral)).laterality == "R"


# --- classification ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("modality", "sop_class", "radiograph", "intraoral"),
    [
        ("IO", samples.INTRAORAL_FOR_PRESENTATION, True, True),
        ("OT", samples.INTRAORAL_FOR_PRESENTATION, True, True),
        ("IO", VL_PHOTOGRAPHIC_IMAGE_STORAGE, True, True),
        ("PX", str(DigitalXRayImageStorageForPresentation), True, False),
        ("DX", str(DigitalXRayImageStorageForPresentation), True, False),
        ("OT", str(DigitalXRayImageStorageForPresentation), True, False),
        ("XC", VL_PHOTOGRAPHIC_IMAGE_STORAGE, False, False),
    ],
)
def test_radiographs_and_intraoral_radiographs_are_told_apart(
    modality: str, sop_class: str, radiograph: bool, intraoral: bool
) -> None:
    info = read(samples.dicom_bytes(modality=modality, sop_class=sop_class))
    assert (info.is_radiograph, info.is_intraoral_radiograph) == (radiograph, intraoral)


# --- hostile text --------------------------------------------------------------------------


def test_markup_in_the_patient_name_is_stored_verbatim_for_escaping_later() -> None:
    info = read(samples.dicom_with_script_in_name())
    assert info.patient_name == "Doe^<script>alert(1)</script>"
    assert info.patient_given_name == "<script>alert(1)</script>"
    assert "script" not in json.dumps(info.to_public_dict())


def test_text_values_lose_nuls_and_are_capped() -> None:
    def sloppy(ds: Dataset) -> None:
        ds["PatientID"] = unchecked(0x00100020, "LO", "A" * 300)
        ds["PatientName"] = unchecked(0x00100010, "PN", "Doe\x00^Jane\x00")
        ds["OperatorsName"] = unchecked(0x00081070, "PN", "B" * 1000)

    info = read(samples.dicom_bytes(mutate=sloppy))
    assert info.patient_id == "A" * MAX_TEXT_LENGTH
    assert info.patient_name == "Doe^Jane"
    assert info.operators_name is not None
    assert len(info.operators_name) == MAX_TEXT_LENGTH


def test_latin_1_names_are_decoded_with_the_declared_character_set() -> None:
    def latin(ds: Dataset) -> None:
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.PatientName = "Müller^Jörg"

    data = samples.dicom_bytes(mutate=latin)
    assert "Müller".encode("latin-1") in data
    info = read(data)
    assert (info.patient_family_name, info.patient_given_name) == ("Müller", "Jörg")


# --- serialisation -------------------------------------------------------------------------


def test_the_public_dict_has_no_identity_and_no_unknowns() -> None:
    info = read(samples.dicom_bytes(kvp=None))
    public = info.to_public_dict()
    json.dumps(public)
    for key in (
        "patient_name",
        "patient_family_name",
        "patient_given_name",
        "patient_id",
        "patient_birth_date",
        "operators_name",
    ):
        assert key not in public
    assert "kvp" not in public
    assert public["teeth"] == ["19"]
    assert public["acquisition_datetime"] == "2026-01-01T12:00:00+00:00"
    assert public["is_intraoral_radiograph"] is True
    assert "Doe" not in json.dumps(public)


def test_the_record_dict_keeps_everything_and_round_trips() -> None:
    info = read(samples.dicom_bytes())
    record = json.loads(json.dumps(info.to_record_dict()))
    assert record["patient_name"] == "Doe^Jane"
    assert record["patient_birth_date"] == "1980-01-01"
    assert record["operators_name"] == "Smith^Ann"
    assert "laterality" in record
    assert record["laterality"] is None
    assert DicomInfo.from_record_dict(record) == info


# --- refusals --------------------------------------------------------------------------------


def test_a_file_without_pixel_data_is_damaged() -> None:
    with pytest.raises(DamagedImage, match=r"^the DICOM file has no pixel data"):
        read(samples.dicom_without_pixels())


def test_a_file_without_the_part_10_header_is_unsupported() -> None:
    data = samples.dicom_bytes()
    with pytest.raises(UnsupportedImageType):
        read(data[132:])  # a bare dataset, as some old exporters write


def _deflate(ds: Dataset) -> None:
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian


def test_deflated_files_are_inflated_and_read_like_explicit_little_endian() -> None:
    deflated = samples.dicom_bytes(mutate=_deflate)
    plain = read(samples.dicom_bytes())

    info = read(deflated)

    assert len(deflated) < len(samples.dicom_bytes()), "the sample really is deflated"
    assert info.transfer_syntax_uid == str(DeflatedExplicitVRLittleEndian)
    assert {**info.to_record_dict(), "transfer_syntax_uid": None} == {**plain.to_record_dict(),
                                                                       "transfer_syntax_uid": None}
    assert info.pixel_data is not None


def test_a_deflate_bomb_is_refused_once_it_inflates_past_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dicom_module, "MAX_INFLATED_BYTES", 64 * 1024)
    big = samples.dicom_bytes(rows=256, columns=256, pixel_fill=0, mutate=_deflate)

    with pytest.raises(DamagedImage, match="expands to more than"):
        read(big)


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.99])
def test_a_deflated_file_cut_short_is_damaged(keep: float) -> None:
    with pytest.raises(DamagedImage):
        read(samples.truncated(samples.dicom_bytes(mutate=_deflate), keep))


def test_the_file_s_dicom_identity_is_kept() -> None:
    data = samples.dicom_bytes(mutate=lambda ds: setattr(ds, "AccessionNumber", "ACC-42") or setattr(
        ds, "InstanceNumber", 7) or setattr(ds, "SeriesNumber", 3))
    header = dcmread(io.BytesIO(data), stop_before_pixels=True)

    info = read(data)

    assert info.study_instance_uid == header.StudyInstanceUID
    assert info.series_instance_uid == header.SeriesInstanceUID
    assert info.sop_instance_uid == header.SOPInstanceUID
    assert (info.accession_number, info.instance_number, info.series_number) == ("ACC-42", 7, 3)
    public = info.to_public_dict()
    assert public["study_instance_uid"] == header.StudyInstanceUID
    assert public["accession_number"] == "ACC-42"


def test_the_sop_instance_uid_falls_back_to_the_file_meta() -> None:
    def drop(ds: Dataset) -> None:
        del ds.SOPInstanceUID

    data = samples.dicom_bytes(mutate=drop)

    assert read(data).sop_instance_uid == dcmread(io.BytesIO(data)).file_meta.MediaStorageSOPInstanceUID


@pytest.mark.parametrize("bad", ["1.2.abc", "1..2", "1." + "2" * 70, ".1.2"])
def test_malformed_uids_are_treated_as_absent(bad: str) -> None:
    def spoil(ds: Dataset) -> None:
        ds.add_new(0x0020000D, "UI", bad)

    with config.disable_value_validation():
        data = samples.dicom_bytes(mutate=spoil)

    assert read(data).study_instance_uid is None


CHARSET_FILES = sorted(Path(pydicom.__file__).parent.joinpath("data", "charset_files").glob("chr*.dcm"))


@pytest.mark.parametrize("path", CHARSET_FILES, ids=[path.stem for path in CHARSET_FILES])
def test_every_character_set_pydicom_knows_decodes_patient_names_as_pydicom_does(path: Path) -> None:
    data = path.read_bytes()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dataset = dcmread(io.BytesIO(data))
    expected = dataset.get("PatientName")
    if "PixelData" not in dataset:
        with pytest.raises(DamagedImage, match="no pixel data"):  # a few of the files carry no image
            read(data)
        return
    info = read(data)
    expected_text = "=".join(expected.components).rstrip("=") if expected is not None else None
    assert info.patient_name == expected_text


def test_a_japanese_name_in_iso_2022_gives_each_of_its_forms() -> None:
    data = CHARSET_FILES[[p.stem for p in CHARSET_FILES].index("chrH32")].read_bytes()

    groups = dicom_module.name_groups(read(data).patient_name)

    assert groups == [("\uff94\uff8f\uff80\uff9e", "\uff80\uff9b\uff73"), ("\u5c71\u7530", "\u592a\u90ce"),
                      ("\u3084\u307e\u3060", "\u305f\u308d\u3046")]


def test_floating_point_pixel_data_is_unsupported() -> None:
    def to_float(ds: Dataset) -> None:
        del ds.PixelData
        ds.FloatPixelData = b"\x00" * (64 * 64 * 4)

    with pytest.raises(UnsupportedImageType):
        read(samples.dicom_bytes(mutate=to_float))


def test_pixel_data_shorter_than_the_dimensions_is_damaged() -> None:
    def grow(ds: Dataset) -> None:
        ds.Rows = 128  # pixel data still holds 64 rows

    with pytest.raises(DamagedImage, match="shorter than the image dimensions"):
        read(samples.dicom_bytes(mutate=grow))


def test_extra_frames_need_extra_pixel_data() -> None:
    def frames(ds: Dataset) -> None:
        ds.NumberOfFrames = 2

    with pytest.raises(DamagedImage, match="shorter"):
        read(samples.dicom_bytes(mutate=frames))


def test_missing_dimensions_are_damaged() -> None:
    def no_rows(ds: Dataset) -> None:
        del ds.Rows

    with pytest.raises(DamagedImage, match="dimensions"):
        read(samples.dicom_bytes(mutate=no_rows))


@pytest.mark.parametrize("keep", [0.2, 0.5, 0.9, 0.999])
def test_truncation_anywhere_is_damaged(keep: float) -> None:
    with pytest.raises(DamagedImage):
        read(samples.truncated(samples.dicom_bytes(), keep))


def test_truncation_inside_the_header_is_damaged() -> None:
    data = samples.dicom_bytes()
    header_end = data.index(b"\xe0\x7f\x10\x00")
    for cut in range(140, header_end, 37):
        with pytest.raises(DamagedImage):
            read(data[:cut])


def test_an_element_claiming_more_bytes_than_the_file_holds_is_damaged() -> None:
    data = bytearray(samples.dicom_bytes())
    at = data.index(b"\x10\x00\x20\x00LO")  # Patient ID
    struct.pack_into("<H", data, at + 6, 0xFFF0)
    with pytest.raises(DamagedImage):
        read(bytes(data))


def test_a_sequence_item_claiming_more_bytes_than_its_sequence_is_damaged() -> None:
    data = bytearray(samples.dicom_bytes())
    sequence = data.index(b"\x08\x00\x28\x22SQ")
    item = sequence + 12
    assert data[item : item + 4] == b"\xfe\xff\x00\xe0"
    struct.pack_into("<L", data, item + 4, 0x7FFFFFF0)
    with pytest.raises(DamagedImage):
        read(bytes(data))


def test_encapsulated_pixel_data_without_its_delimiter_is_damaged() -> None:
    data = samples.encapsulated_dicom_bytes()
    assert data.endswith(b"\xfe\xff\xdd\xe0\x00\x00\x00\x00")
    with pytest.raises(DamagedImage, match="truncated"):
        read(data[:-8])


def test_encapsulated_pixel_data_with_no_fragments_is_damaged() -> None:
    data = samples.encapsulated_dicom_bytes()
    pixel = data.index(b"\xe0\x7f\x10\x00OB")
    empty = data[:pixel] + struct.pack("<HH2sHL", 0x7FE0, 0x0010, b"OB", 0, 0xFFFFFFFF)
    empty += struct.pack("<HHL", 0xFFFE, 0xE000, 0) + struct.pack("<HHL", 0xFFFE, 0xE0DD, 0)
    with pytest.raises(DamagedImage, match="no pixel data"):
        read(empty)


def test_encapsulated_pixels_under_a_native_transfer_syntax_are_damaged() -> None:
    data = samples.encapsulated_dicom_bytes()
    jpeg_syntax = b"1.2.840.10008.1.2.4.50"
    assert data.count(jpeg_syntax) == 1
    relabelled = data.replace(jpeg_syntax, b"1.2.840.10008.1.2.1\x00\x00\x00")
    with pytest.raises(DamagedImage, match="transfer syntax"):
        read(relabelled)


# --- structural limits -------------------------------------------------------------------------


def test_nesting_up_to_the_limit_is_accepted() -> None:
    info = read(samples.deeply_nested_dicom(MAX_SEQUENCE_DEPTH))
    assert info.rows == 8


def test_nesting_one_past_the_limit_is_damaged() -> None:
    with pytest.raises(DamagedImage, match="nests sequences deeper"):
        read(samples.deeply_nested_dicom(MAX_SEQUENCE_DEPTH + 1))


@pytest.mark.parametrize("depth", [200, 100_000])
def test_a_deeply_nested_file_is_refused_fast_without_recursing(depth: int) -> None:
    data = samples.deeply_nested_dicom(depth)
    started = time.perf_counter()
    with pytest.raises(DamagedImage, match="nests sequences deeper"):
        read(data)
    assert time.perf_counter() - started < 0.5


def test_too_many_elements_are_damaged() -> None:
    with pytest.raises(DamagedImage, match=f"more than {MAX_ELEMENTS} elements"):
        read(samples.dicom_with_many_elements(MAX_ELEMENTS + 1))


def test_a_large_but_reasonable_element_count_is_accepted() -> None:
    assert read(samples.dicom_with_many_elements(MAX_ELEMENTS - 2_000)).teeth == ["19"]


def test_oversized_values_inside_sequences_are_damaged(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dicom_module, "MAX_NESTED_VALUE_BYTES", 16)

    def long_meaning(ds: Dataset) -> None:
        ds.PrimaryAnatomicStructureSequence[0].CodeMeaning = "Permanent mandibular left first molar"

    with pytest.raises(DamagedImage, match="implausibly large"):
        read(samples.dicom_bytes(mutate=long_meaning))


def test_the_nested_value_budget_is_a_total_not_a_per_value_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    # Each value is small; together they exceed the budget.
    monkeypatch.setattr(dicom_module, "MAX_NESTED_VALUE_BYTES", 200)
    many_teeth = tuple(str(n) for n in range(1, 17))
    assert read(samples.dicom_bytes(teeth=many_teeth[:2])).teeth == ["1", "2"]
    with pytest.raises(DamagedImage, match="implausibly large"):
        read(samples.dicom_bytes(teeth=many_teeth))


@pytest.mark.parametrize("family", ["current SCT", "older SCT", "SRT", "ISO3950"])
def test_all_52_teeth_are_read_from_a_header_in_each_code_family(family: str) -> None:
    from tests.test_dental import TOOTH_CODES

    column, scheme = {"current SCT": (2, "SCT"), "older SCT": (3, "SCT"), "SRT": (4, "SRT"),
                      "ISO3950": (1, "ISO3950")}[family]

    def code_teeth(ds: Dataset) -> None:
        items = []
        for row in TOOTH_CODES:
            item = Dataset()
            item.CodeValue = row[column]
            item.CodingSchemeDesignator = scheme
            item.CodeMeaning = f"tooth {row[0]}"
            items.append(item)
        ds.PrimaryAnatomicStructureSequence = items

    info = read(samples.dicom_bytes(teeth=(), mutate=code_teeth))

    assert info.teeth == [row[0] for row in TOOTH_CODES]
