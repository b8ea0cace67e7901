"""Payer profiles: what a payer wants that the sources leave open, kept as JSON data beside this module.

A profile file names the payer ids it applies to; a coverage whose payer id no file claims gets the default
profile, which implements the rules in docs/billing.md. A file may ``extend`` another and override some of its keys,
so a variant of a plan stays a few lines long.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any, Literal

from referral.billing.catalogue import CAPTURE_ONLY, CATALOGUE, EVALUATION

__all__ = [
    "ATTACHMENT_REPORT_TYPES",
    "ATTACHMENT_TRANSMISSIONS",
    "DEFAULT_ATTACHMENTS",
    "DEFAULT_PROFILE_ID",
    "FILING_INDICATORS",
    "DailyCap",
    "Frequency",
    "PayerProfile",
    "PlacesOfService",
    "ProfileError",
    "all_profiles",
    "get_profile",
    "load_profile",
    "parse_profile",
]

DEFAULT_PROFILE_ID = "default"

Unit391 = Literal["image", "report"]
PhotoUnit = Literal["visit", "image"]
Comparator = Literal[">=", ">"]
Severity = Literal["warning", "hold"]


# PWK01 report types a dental claim's documentation may go as (claims-lifecycle.md §3), in our words.
ATTACHMENT_REPORT_TYPES: dict[str, str] = {
    "RB": "radiographs or other images",
    "RR": "radiology report",
    "DG": "diagnostic report",
    "B4": "referral form",
    "OZ": "supporting notes",
    "P6": "periodontal chart",
    "DA": "dental models",
    "EB": "another payer's explanation of benefits",
    "OB": "operative note",
}
# SBR09 claim filing indicators a dental payer is filed under (5010 code list, in our words).
FILING_INDICATORS: dict[str, str] = {
    "12": "preferred provider organization",
    "13": "point of service",
    "14": "exclusive provider organization",
    "15": "indemnity",
    "16": "HMO, Medicare risk",
    "17": "dental maintenance organization",
    "BL": "Blue Cross / Blue Shield",
    "CH": "military health (TRICARE)",
    "CI": "commercial insurance",
    "HM": "health maintenance organization",
    "MA": "Medicare part A",
    "MB": "Medicare part B",
    "MC": "Medicaid",
    "OF": "other federal program",
    "VA": "veterans affairs",
    "WC": "workers' compensation",
    "ZZ": "unknown",
}
# PWK02: how the documentation travels. AA (available on request) sends no control number.
ATTACHMENT_TRANSMISSIONS: dict[str, str] = {
    "EL": "electronically through an attachment service",
    "FT": "by file transfer",
    "BM": "by mail",
    "FX": "by fax",
    "EM": "by e-mail",
    "AA": "kept on file, sent when the payer asks",
}
_PHOTO_CAPTURE_ONLY = frozenset({"D0703", "D0704"})
_RADIOGRAPH_CAPTURE_ONLY = tuple(
    code for code, known in CATALOGUE.items() if known.category == CAPTURE_ONLY and code not in _PHOTO_CAPTURE_ONLY
)
# PRODUCT.md issue 15: payers deny capture-only radiographs and the reading for missing documentation, so by default
# the images go with every capture-only radiograph code and the signed report with D0391.
DEFAULT_ATTACHMENTS: dict[str, str] = {**dict.fromkeys(_RADIOGRAPH_CAPTURE_ONLY, "RB"), "D0391": "DG"}


class ProfileError(ValueError):
    """A profile file that does not say what the engine needs, or says it ambiguously."""


@dataclass(frozen=True)
class DailyCap:
    """At most ``max_units`` units of ``codes`` (summed) per patient per date of service."""

    codes: tuple[str, ...]
    max_units: int
    same_organization: bool = False  # count only earlier lines billed by the same practice
    note: str = ""


@dataclass(frozen=True)
class Frequency:
    """At most ``max_occasions`` dates of service with any of ``codes`` within ``months`` months."""

    codes: tuple[str, ...]
    max_occasions: int
    months: int
    same_organization: bool = False
    note: str = ""


@dataclass(frozen=True)
class PlacesOfService:
    teledentistry: str = "02"  # patient not at home
    teledentistry_at_home: str = "10"
    capture: str | None = None  # None: the physical site where the images were taken


@dataclass(frozen=True)
class PayerProfile:
    id: str
    name: str
    payer_ids: tuple[str, ...] = ()
    d0391_unit: Unit391 = "image"
    photo_unit: PhotoUnit = "visit"
    evaluation_code: str = "D0140"
    unrecognised_codes: frozenset[str] = frozenset()
    places_of_service: PlacesOfService = field(default_factory=PlacesOfService)
    # None switches the same-day fee comparison off.
    rebundle_comparator: Comparator | None = ">="
    complete_series_exclusive: bool = True
    periapical_location: Severity = "warning"
    daily_caps: tuple[DailyCap, ...] = ()
    frequencies: tuple[Frequency, ...] = ()
    # Code -> PWK report type of the documentation the payer wants with a line of that code.
    attachments: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_ATTACHMENTS))
    attachment_transmission: str = "EL"
    claim_filing_indicator: str | None = None  # SBR09; None: guessed from the payer's name
    notes: str = ""

    def recognises(self, code: str) -> bool:
        return code not in self.unrecognised_codes

    def attachment_for(self, code: str) -> str | None:
        """The PWK report type this payer wants for a line of ``code``, or None when it wants nothing."""
        return self.attachments.get(code)


_TOP_KEYS = {
    "id",
    "name",
    "extends",
    "payer_ids",
    "d0391_unit",
    "photo_unit",
    "evaluation_code",
    "unrecognised_codes",
    "places_of_service",
    "rebundle_comparator",
    "complete_series_exclusive",
    "periapical_location",
    "daily_caps",
    "frequencies",
    "attachments",
    "attachment_transmission",
    "claim_filing_indicator",
    "notes",
}


def _codes(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(code, str) for code in value):
        raise ProfileError(f"{where} must be a non-empty list of CDT codes")
    unknown = sorted(code for code in value if code not in CATALOGUE)
    if unknown:
        raise ProfileError(f"{where} names codes the catalogue does not know: {', '.join(unknown)}")
    return tuple(sorted(set(value)))


def _choice(data: dict[str, Any], key: str, choices: tuple[object, ...], default: object) -> Any:
    value = data.get(key, default)
    if value not in choices:
        raise ProfileError(f"{key} must be one of {', '.join(map(repr, choices))}, not {value!r}")
    return value


def _positive_int(value: object, where: str) -> int:
    # bool is an int subclass; "true" must not read as a limit of one.
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ProfileError(f"{where} must be a positive whole number")
    return value


def _only_keys(data: dict[str, Any], allowed: set[str], where: str) -> None:
    extra = sorted(set(data) - allowed)
    if extra:
        raise ProfileError(f"{where} has unknown keys: {', '.join(extra)}")


def _pos(value: object, where: str) -> str:
    if not isinstance(value, str) or len(value) != 2 or not value.isdigit():
        raise ProfileError(f"{where} must be a two-digit place-of-service code")
    return value


def _places(data: object) -> PlacesOfService:
    if data is None:
        return PlacesOfService()
    if not isinstance(data, dict):
        raise ProfileError("places_of_service must be an object")
    _only_keys(data, {"teledentistry", "teledentistry_at_home", "capture"}, "places_of_service")
    capture = data.get("capture")
    return PlacesOfService(
        teledentistry=_pos(data.get("teledentistry", "02"), "places_of_service.teledentistry"),
        teledentistry_at_home=_pos(data.get("teledentistry_at_home", "10"), "places_of_service.teledentistry_at_home"),
        capture=None if capture is None else _pos(capture, "places_of_service.capture"),
    )


def _caps(items: object) -> tuple[DailyCap, ...]:
    if not isinstance(items, list):
        raise ProfileError("daily_caps must be a list")
    caps = []
    for index, item in enumerate(items):
        where = f"daily_caps[{index}]"
        if not isinstance(item, dict):
            raise ProfileError(f"{where} must be an object")
        _only_keys(item, {"codes", "max_units", "same_organization", "note"}, where)
        caps.append(
            DailyCap(
                codes=_codes(item.get("codes"), f"{where}.codes"),
                max_units=_positive_int(item.get("max_units"), f"{where}.max_units"),
                same_organization=bool(item.get("same_organization", False)),
                note=str(item.get("note", "")),
            )
        )
    return tuple(caps)


def _frequencies(items: object) -> tuple[Frequency, ...]:
    if not isinstance(items, list):
        raise ProfileError("frequencies must be a list")
    rules = []
    for index, item in enumerate(items):
        where = f"frequencies[{index}]"
        if not isinstance(item, dict):
            raise ProfileError(f"{where} must be an object")
        _only_keys(item, {"codes", "max_occasions", "months", "same_organization", "note"}, where)
        rules.append(
            Frequency(
                codes=_codes(item.get("codes"), f"{where}.codes"),
                max_occasions=_positive_int(item.get("max_occasions"), f"{where}.max_occasions"),
                months=_positive_int(item.get("months"), f"{where}.months"),
                same_organization=bool(item.get("same_organization", False)),
                note=str(item.get("note", "")),
            )
        )
    return tuple(rules)


def _attachments(data: object) -> dict[str, str]:
    if data is None:
        return dict(DEFAULT_ATTACHMENTS)
    if not isinstance(data, dict):
        raise ProfileError("attachments must be an object of CDT code -> PWK report type")
    unknown = sorted(code for code in data if code not in CATALOGUE)
    if unknown:
        raise ProfileError(f"attachments names codes the catalogue does not know: {', '.join(unknown)}")
    bad = sorted(code for code, kind in data.items() if kind not in ATTACHMENT_REPORT_TYPES)
    if bad:
        raise ProfileError(
            f"attachments: the report type of {', '.join(bad)} must be one of {', '.join(ATTACHMENT_REPORT_TYPES)}"
        )
    return dict(sorted(data.items()))


def parse_profile(data: dict[str, Any]) -> PayerProfile:
    """Build a profile from the decoded JSON of one file (after ``extends`` has been resolved)."""
    _only_keys(data, _TOP_KEYS, "profile")
    profile_id = data.get("id")
    if not isinstance(profile_id, str) or not profile_id:
        raise ProfileError("profile id must be a non-empty string")
    payer_ids = data.get("payer_ids", [])
    if not isinstance(payer_ids, list) or not all(isinstance(p, str) and p for p in payer_ids):
        raise ProfileError(f"{profile_id}: payer_ids must be a list of payer ids")
    evaluation_code = data.get("evaluation_code", "D0140")
    if evaluation_code not in CATALOGUE or CATALOGUE[evaluation_code].category != EVALUATION:
        raise ProfileError(f"{profile_id}: evaluation_code {evaluation_code!r} is not an evaluation code")
    unrecognised = data.get("unrecognised_codes", [])
    return PayerProfile(
        id=profile_id,
        name=str(data.get("name", profile_id)),
        payer_ids=tuple(payer_ids),
        d0391_unit=_choice(data, "d0391_unit", ("image", "report"), "image"),
        photo_unit=_choice(data, "photo_unit", ("visit", "image"), "visit"),
        evaluation_code=evaluation_code,
        unrecognised_codes=frozenset(_codes(unrecognised, "unrecognised_codes")) if unrecognised else frozenset(),
        places_of_service=_places(data.get("places_of_service")),
        rebundle_comparator=_choice(data, "rebundle_comparator", (">=", ">", None), ">="),
        complete_series_exclusive=bool(data.get("complete_series_exclusive", True)),
        periapical_location=_choice(data, "periapical_location", ("warning", "hold"), "warning"),
        daily_caps=_caps(data.get("daily_caps", [])),
        frequencies=_frequencies(data.get("frequencies", [])),
        attachments=_attachments(data.get("attachments")),
        attachment_transmission=_choice(data, "attachment_transmission", tuple(ATTACHMENT_TRANSMISSIONS), "EL"),
        claim_filing_indicator=_choice(data, "claim_filing_indicator", (*FILING_INDICATORS, None), None),
        notes=str(data.get("notes", "")),
    )


def _raw_files() -> dict[str, dict[str, Any]]:
    folder = resources.files(__package__ or "referral.billing").joinpath("profiles")
    raw: dict[str, dict[str, Any]] = {}
    for entry in sorted(folder.iterdir(), key=lambda item: item.name):
        if not entry.name.endswith(".json"):
            continue
        try:
            data = json.loads(entry.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ProfileError(f"{entry.name}: not valid JSON ({exc})") from exc
        if not isinstance(data, dict):
            raise ProfileError(f"{entry.name}: a profile is a JSON object")
        profile_id = data.get("id")
        # The file name is what people grep for; an id that disagrees with it would hide a profile.
        if profile_id != entry.name.removesuffix(".json"):
            raise ProfileError(f"{entry.name}: id {profile_id!r} must match the file name")
        raw[profile_id] = data
    return raw


def _resolve(profile_id: str, raw: dict[str, dict[str, Any]], seen: tuple[str, ...] = ()) -> dict[str, Any]:
    if profile_id in seen:
        raise ProfileError(f"profiles extend each other in a loop: {' -> '.join((*seen, profile_id))}")
    if profile_id not in raw:
        raise ProfileError(f"no profile {profile_id!r} to extend")
    data = dict(raw[profile_id])
    parent = data.pop("extends", None)
    if parent is None:
        return data
    merged = _resolve(str(parent), raw, (*seen, profile_id))
    # A variant is a different payer: it must not inherit the payer ids that select its parent.
    merged.pop("payer_ids", None)
    merged.update(data)
    return merged


@cache
def _profiles() -> tuple[dict[str, PayerProfile], dict[str, str]]:
    raw = _raw_files()
    if DEFAULT_PROFILE_ID not in raw:
        raise ProfileError("the default profile file is missing")
    profiles = {profile_id: parse_profile(_resolve(profile_id, raw)) for profile_id in raw}
    by_payer: dict[str, str] = {}
    for profile in profiles.values():
        for payer_id in profile.payer_ids:
            if payer_id in by_payer:
                raise ProfileError(f"payer id {payer_id!r} is claimed by {by_payer[payer_id]} and {profile.id}")
            by_payer[payer_id] = profile.id
    return profiles, by_payer


def all_profiles() -> tuple[PayerProfile, ...]:
    return tuple(_profiles()[0].values())


def get_profile(profile_id: str) -> PayerProfile:
    profiles = _profiles()[0]
    try:
        return profiles[profile_id]
    except KeyError:
        raise ProfileError(f"no payer profile {profile_id!r}") from None


def load_profile(payer_id: str | None) -> PayerProfile:
    """The profile for a coverage's payer id; payers no profile names get the default one."""
    profiles, by_payer = _profiles()
    chosen = by_payer.get(payer_id.strip()) if payer_id else None
    return profiles[chosen or DEFAULT_PROFILE_ID]
