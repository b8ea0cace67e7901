from __future__ import annotations

from typing import Any

from flask_smorest.fields import Upload
from marshmallow import ValidationError, fields, validate, validates_schema

from referral.models.enums import ImageKind
from referral.schemas.common import Area, DumpSchema, LoadSchema, PracticeDateTime, Teeth, Text, one_of

_CAPTURED_AT = ("ISO 8601 with an offset, or a wall time without one, read in the practice's time zone; "
                "when left out, the DICOM file's acquisition (or content) date and time")
_CAPTURED_BY = ("the provider of the practice who took the image; when left out, the provider the DICOM operator "
                "name names, else the signed-in user's own provider")


class ImageUploadFormSchema(LoadSchema):
    kind = fields.String(required=True, validate=one_of(ImageKind.values()))
    teeth = Teeth(load_default=list, metadata={"description": "comma-separated ADA Universal numbers"})
    area = Area(allow_none=True, metadata={"description": "00, 01, 02, 10, 20, 30 or 40"})
    reason = Text(1000, required=True, metadata={"description": "clinical reason for the exposure"})
    captured_at = PracticeDateTime(metadata={"description": _CAPTURED_AT})
    captured_by_provider_id = fields.UUID(metadata={"description": _CAPTURED_BY})
    retake_of = fields.UUID(allow_none=True)
    retake_reason = Text(200, allow_none=True, metadata={"description": "e.g. cone cut, apex cut off"})
    exposure_kvp = fields.Float(allow_none=True, validate=validate.Range(min=1, max=200))
    exposure_ma = fields.Float(allow_none=True, validate=validate.Range(min=0.01, max=100))
    exposure_time_ms = fields.Float(allow_none=True, validate=validate.Range(min=0.1, max=60_000))

    @validates_schema
    def _retake(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if data.get("retake_of") and not data.get("retake_reason"):
            raise ValidationError("Say why the image is retaken.", "retake_reason")
        if data.get("retake_reason") and not data.get("retake_of"):
            raise ValidationError("Name the image being retaken.", "retake_of")


class ImagePatchSchema(LoadSchema):
    """What may be fixed on an image before its case is sent; fields left out stay as they are."""

    kind = fields.String(validate=one_of(ImageKind.values()))
    teeth = Teeth(metadata={"description": "ADA Universal numbers; [] for none"})
    area = Area(allow_none=True, metadata={"description": "00, 01, 02, 10, 20, 30 or 40; null for none"})
    reason = Text(1000, metadata={"description": "clinical reason for the exposure"})
    captured_at = PracticeDateTime(metadata={"description": "ISO 8601 with an offset, or a wall time without one, "
                                                            "read in the practice's time zone"})
    captured_by_provider_id = fields.UUID()

    @validates_schema
    def _something(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if not data:
            raise ValidationError("Give at least one of kind, teeth, area, reason, captured_at or "
                                  "captured_by_provider_id.", "_schema")


class ImageFileSchema(LoadSchema):
    file = Upload(required=True, metadata={"description": "DICOM Part 10, JPEG, PNG, TIFF, WebP or HEIC"})


class ExposureSchema(DumpSchema):
    kvp = fields.Float(attribute="exposure_kvp", allow_none=True)
    ma = fields.Float(attribute="exposure_ma", allow_none=True)
    time_ms = fields.Float(attribute="exposure_time_ms", allow_none=True)


# The stored header keeps identifying fields (patient, operator) for matching and audit; responses
# carry only the technical ones.
_PUBLIC_DICOM_FIELDS = (
    "modality", "sop_class_uid", "presentation_intent", "acquisition_datetime", "kvp", "exposure_time_ms",
    "tube_current_ma", "exposure_mas", "laterality", "teeth", "anatomic_region", "rows", "columns",
    "bits_stored", "photometric", "window_center", "window_width", "transfer_syntax_uid",
    "study_instance_uid", "series_instance_uid", "sop_instance_uid", "accession_number", "series_number",
    "instance_number",
)

PREVIEW_STATUSES = ("ready", "pending", "failed", "unavailable")


def _public_dicom(image: Any) -> dict[str, Any] | None:
    header = image.dicom  # read once: each attribute read of a mapped column goes through SQLAlchemy
    if not header:
        return None
    return {key: header[key] for key in _PUBLIC_DICOM_FIELDS if header.get(key) is not None}


class ImageSchema(DumpSchema):
    id = fields.UUID()
    referral_id = fields.UUID()
    kind = fields.Enum(ImageKind, by_value=True)
    teeth = Teeth()
    area = fields.String(allow_none=True)
    reason = fields.String()
    captured_at = fields.DateTime()
    captured_by_provider_id = fields.UUID()
    captured_by_confirmed = fields.Boolean(metadata={
        "description": "false for an image sent by a DICOM device whose file named no provider of the practice: "
                       "captured_by_provider_id is the referral's referring provider until the office confirms "
                       "who captured it (POST /api/v1/images/{id}/capturer)"})
    capture_notes = fields.Function(lambda image: image.capture_notes, metadata={
        "description": "[{code, message}]: what the file says that disagrees with the form, for a person to check "
                       "(operator_differs: the DICOM operator is not the provider recorded as having taken it)"})
    quality_warnings = fields.Function(lambda image: list(image.quality_warnings or []), metadata={
        "description": "[{code, message}]: signs measured in the pixels at intake that the image is likely "
                       "unusable (underexposed, overexposed, low_contrast, blurred, too_small; wrong_orientation "
                       "is reserved and not detected). Empty when none, or for images stored before the checks. "
                       "Warnings never refuse an upload or block sending"})
    sent_at = fields.DateTime(allow_none=True, metadata={
        "description": "when the case was first sent with this image; until then PATCH and DELETE may fix it"})
    capture_only = fields.Boolean()
    retake_of = fields.UUID(attribute="retake_of_id", allow_none=True)
    retake_reason = fields.String(allow_none=True)
    exposure = fields.Function(lambda image: ExposureSchema().dump(image))
    file_format = fields.String()
    content_type = fields.String()
    size = fields.Integer()
    sha256 = fields.String()
    original_filename = fields.String(allow_none=True)
    width = fields.Integer(allow_none=True)
    height = fields.Integer(allow_none=True)
    dicom = fields.Function(_public_dicom, metadata={
        "description": "header fields read from a DICOM file, among them its identity: study_instance_uid, "
                       "series_instance_uid, sop_instance_uid, accession_number, series_number, instance_number"})
    preview_status = fields.Function(lambda image: image.preview_status, metadata={
        "enum": list(PREVIEW_STATUSES),
        "description": "ready: preview_url and thumbnail_url serve real renditions; pending: they are drawn "
                       "right after the upload's answer (quality_warnings arrive with them; asking for the preview "
                       "draws it at once); failed: the pixel data could not be drawn, the office is told and should "
                       "replace the image; unavailable: the image has none (stored before previews were made), "
                       "download the original"})
    # Null once the image is deleted: its bytes are no longer kept.
    content_url = fields.Function(lambda image: None if image.is_deleted else f"/api/v1/images/{image.id}/content")
    # Also null for images stored before previews were made at intake.
    preview_url = fields.Function(
        lambda image: f"/api/v1/images/{image.id}/preview" if image.has_renditions else None,
        metadata={"description": "JPEG preview, at most 1600 px, without metadata (drawn on the spot while "
                                 "preview_status is pending)"})
    thumbnail_url = fields.Function(
        lambda image: f"/api/v1/images/{image.id}/thumbnail" if image.has_renditions else None,
        metadata={"description": "JPEG thumbnail, at most 256 px, without metadata"})
    created_at = fields.DateTime()
    deleted_at = fields.DateTime(allow_none=True, metadata={
        "description": "set when the image was deleted; its metadata stays, its content is gone (410)"})
    deleted_reason = fields.String(allow_none=True, metadata={"description": "retention or patient_deleted"})
    integrity_problem = fields.String(allow_none=True, metadata={
        "description": "null, or what the storage check found: missing (the stored file is gone) or "
                       "checksum_mismatch (it no longer matches sha256); /content then answers 503"})
    integrity_problem_since = fields.DateTime(allow_none=True, metadata={
        "description": "when the storage check first found the problem"})


class ImageListSchema(DumpSchema):
    items = fields.List(fields.Nested(ImageSchema))


class ContentQuerySchema(LoadSchema):
    redirect = fields.Boolean(load_default=False, metadata={
        "description": "answer with a redirect to a short-lived store URL where the store can issue one"})


class DirectUploadSchema(DumpSchema):
    upload_id = fields.UUID()
    url = fields.String(metadata={"description": "POST a multipart/form-data body here: every entry of "
                                                 "`fields`, then the file as `file` (last)"})
    form_fields = fields.Dict(keys=fields.String(), values=fields.String(), data_key="fields",
                              metadata={"description": "form fields to send unchanged, before the file"})
    expires_at = fields.DateTime(metadata={"description": "the store refuses the form after this (15 minutes)"})
    complete_by = fields.DateTime(metadata={"description": "the last moment to call complete_url"})
    max_bytes = fields.Integer(metadata={"description": "the largest file the form accepts"})
    complete_url = fields.Function(
        lambda started: f"/api/v1/referrals/{started.referral_id}/images/uploads/{started.upload_id}/complete")


_SHA256 = validate.Regexp(r"^[0-9a-fA-F]{64}\Z", error="Give the SHA-256 as 64 hex digits.")


class DirectUploadStartSchema(LoadSchema):
    """What the client may say about the file before sending it."""

    sha256 = fields.String(validate=_SHA256, metadata={
        "description": "hex SHA-256 of the file to be sent: the form then takes only a file of this digest (S3 "
                       "refuses another), and completion can check the file without the app servers reading it"})


class DirectUploadCompleteSchema(ImageUploadFormSchema):
    """The direct upload's form fields, as JSON, and what the client says it sent."""

    size = fields.Integer(required=True, strict=True, validate=validate.Range(min=1),
                          metadata={"description": "bytes sent to the store"})
    sha256 = fields.String(required=True, validate=_SHA256, metadata={"description": "hex SHA-256 of the bytes sent"})
    filename = Text(255, allow_none=True, metadata={"description": "the file's name, kept for display only"})


class ImageUploadQuerySchema(ImageUploadFormSchema):
    """A raw-body upload's query: the multipart form's fields, plus what the multipart file part would say."""

    filename = Text(255, metadata={"description": "the file's name, kept for display only"})
    sha256 = fields.String(validate=_SHA256, metadata={
        "description": "hex SHA-256 of the body: when given, a body with another digest is refused (422)"})


class CapturerSchema(LoadSchema):
    captured_by_provider_id = fields.UUID(required=True, metadata={
        "description": "the practice's provider who took the image"})
