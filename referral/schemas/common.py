from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates

from referral import dental, timezones
from referral.validation import US_STATES, normalize_zip, npi_is_valid


class LoadSchema(Schema):
    """Input: unknown fields are an error, never silently dropped or mass-assigned."""

    class Meta:
        unknown = RAISE


class DumpSchema(Schema):
    pass


class Text(fields.String):
    """A trimmed, bounded, printable string."""

    def __init__(self, max_length: int, *, min_length: int = 1, **kwargs: Any) -> None:
        super().__init__(validate=validate.Length(min=min_length, max=max_length), **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        if any(ord(ch) < 32 and ch not in "\n\t" for ch in text):
            raise ValidationError("Control characters are not allowed.")
        return text


class Npi(fields.String):
    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        if not npi_is_valid(text):
            raise ValidationError("Not a valid NPI: 10 digits with a correct check digit.")
        return text


class UsState(fields.String):
    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs).strip().upper()
        if text not in US_STATES:
            raise ValidationError("Not a US state or territory code (two letters, e.g. CA).")
        return text


class Teeth(fields.Field):
    """ADA Universal tooth designations, as a JSON list or a comma-separated form value."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> list[str]:
        if isinstance(value, str):
            if len(value) > 400:
                raise ValidationError("Too many teeth.")
            value = [part for part in value.split(",") if part.strip()]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValidationError("Give teeth as a list of strings or a comma-separated list.")
        if len(value) > 64:
            raise ValidationError("Too many teeth.")
        try:
            return dental.parse_teeth(value)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> list[str]:
        return list(value or [])


class Area(fields.String):
    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return dental.normalize_area(text)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


class PastDateTime(fields.AwareDateTime):
    """A timestamp with its offset, not in the future (a little clock skew is tolerated)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        result: datetime = super()._deserialize(value, attr, data, **kwargs)
        return _past_in_utc(result)


def _past_in_utc(result: datetime) -> datetime:
    try:
        # year 1 or 9999 with an offset has no UTC equivalent
        in_utc = result.astimezone(UTC)
    except OverflowError:
        raise ValidationError("Not a valid date and time.") from None
    if timezones.is_future(in_utc):
        raise ValidationError("Must not be in the future.")
    return in_utc


class PracticeDateTime(fields.DateTime):
    """A moment as a person types it: ISO 8601 with an offset (converted to UTC, not in the future), or a wall
    time without one, returned naive for the service to read in the practice's time zone (and check there)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        result: datetime = super()._deserialize(value, attr, data, **kwargs)
        if result.tzinfo is None:
            if not 1900 <= result.year <= 9000:
                raise ValidationError("Not a valid date and time.")
            return result
        return _past_in_utc(result)


class PastDate(fields.Date):
    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> date:
        result: date = super()._deserialize(value, attr, data, **kwargs)
        today = datetime.now(UTC).date()
        if result > today:
            raise ValidationError("Must not be in the future.")
        if result.year < today.year - 130:
            raise ValidationError("Too far in the past.")
        return result


def one_of(values: list[str]) -> validate.OneOf:
    return validate.OneOf(values, error="Must be one of: {choices}.")


class StatusList(fields.Field):
    """One status or several, comma-separated, each among ``choices``."""

    def __init__(self, choices: Sequence[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.choices = tuple(choices)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> list[str]:
        if not isinstance(value, str) or len(value) > 300:
            raise ValidationError("Give a status or a comma-separated list of statuses.")
        statuses = [part.strip() for part in value.split(",") if part.strip()]
        unknown = [s for s in statuses if s not in self.choices]
        if unknown or not statuses:
            raise ValidationError(f"Must be statuses among: {', '.join(self.choices)}.")
        return statuses


class PageQuerySchema(LoadSchema):
    cursor = fields.String(validate=validate.Length(max=256))
    limit = fields.Integer(validate=validate.Range(min=1, max=100), load_default=25)


class PageSchema(DumpSchema):
    next_cursor = fields.String(allow_none=True)


class StreetAddressSchema(LoadSchema):
    line1 = Text(200, required=True)
    line2 = Text(200, allow_none=True)
    city = Text(100, required=True)
    zip = fields.String(required=True, validate=validate.Length(max=10))

    @validates("zip")
    def _zip(self, value: str, **_kwargs: Any) -> None:
        try:
            normalize_zip(value)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
