from __future__ import annotations

from typing import Any

from flask_smorest.fields import Upload
from marshmallow import ValidationError, fields, validate, validates_schema

from referral.models.enums import ImageKind
from referral.schemas.common import Area, DumpSchema, LoadSchema, PastDateTime, Teeth, Text, one_of


class ImageUploadFormSchema(LoadSchema):
    kind = fields.String(required=True, validate=one_of(ImageKind.values()))
    teeth = Teeth(load_default=list, metadata={"description": "comma-separated ADA Universal numbers"})
    area = Area(allow_none=True, metadata={"description": "00, 01, 02, 10, 20, 30 or 40"})
    reason = Text(1000, required=True, metadata={"description": "clinical reason for the exposure"})
    captured_at = PastDateTime(required=True, metadata={"description": "ISO 8601 with offset"})
    captured_by_provider_id = fields.UUID(required=True)
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


class ImageFileSchema(LoadSchema):
    file = Upload(required=True, metadata={"description": "DICOM Part 10, JPEG, PNG or TIFF"})


class ExposureSchema(DumpSchema):
    kvp = fields.Float(attribute="exposure_kvp", allow_none=True)
    ma = fields.Float(attribute="exposure_ma", allow_none=True)
    time_ms = fields.Float(attribute="exposure_time_ms", allow_none=True)


# The stored header keeps identifying fields (patient, operator) for matching and audit; responses
# carry only the technical ones.
_PUBLIC_DICOM_FIELDS = (
    "modality", "sop_class_uid", "presentation_intent", "acquisition_datetime", "kvp", "exposure_time_ms",
    "tube_current_ma", "exposure_mas", "laterality", "teeth", "anatomic_region", "rows", "columns",
    "bits_stored", "photometric", "window_center", "window_width",
)


def _public_dicom(image: Any) -> dict[str, Any] | None:
    if not image.dicom:
        return None
    return {key: image.dicom[key] for key in _PUBLIC_DICOM_FIELDS if image.dicom.get(key) is not None}


class ImageSchema(DumpSchema):
    id = fields.UUID()
    referral_id = fields.UUID()
    kind = fields.Enum(ImageKind, by_value=True)
    teeth = Teeth()
    area = fields.String(allow_none=True)
    reason = fields.String()
    captured_at = fields.DateTime()
    captured_by_provider_id = fields.UUID()
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
    dicom = fields.Function(_public_dicom, metadata={"description": "header fields read from a DICOM file"})
    # Null once the image is deleted: its bytes are no longer kept.
    content_url = fields.Function(lambda image: None if image.is_deleted else f"/api/v1/images/{image.id}/content")
    # Also null for images stored before previews were made at intake.
    preview_url = fields.Function(
        lambda image: f"/api/v1/images/{image.id}/preview" if image.preview_key and not image.is_deleted else None,
        metadata={"description": "JPEG preview, at most 1600 px, without metadata"})
    thumbnail_url = fields.Function(
        lambda image: f"/api/v1/images/{image.id}/thumbnail" if image.thumbnail_key and not image.is_deleted
        else None,
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


class DirectUploadCompleteSchema(ImageUploadFormSchema):
    """The direct upload's form fields, as JSON, and what the client says it sent."""

    size = fields.Integer(required=True, strict=True, validate=validate.Range(min=1),
                          metadata={"description": "bytes sent to the store"})
    sha256 = fields.String(required=True, validate=validate.Regexp(r"^[0-9a-fA-F]{64}\Z",
                                                                   error="Give the SHA-256 as 64 hex digits."),
                           metadata={"description": "hex SHA-256 of the bytes sent"})
    filename = Text(255, allow_none=True, metadata={"description": "the file's name, kept for display only"})
