"""Payer edits: what a payer will object to on a generated claim, each named by its rule.

Edits never change what was billed. A ``hold`` keeps the claim from being sent until someone looks at it; a
``warning`` is shown beside the lines it concerns. The rules and their sources are in docs/billing.md.
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from collections.abc import Iterable
from datetime import date
from decimal import Decimal

from referral.billing.catalogue import CAPTURE_ONLY, CATALOGUE, UnknownCode, procedure
from referral.billing.model import Address, Claim, ClaimLine, Edit, PriorLine, ProviderFacts, VisitFacts
from referral.billing.profiles import PayerProfile
from referral.validation import npi_is_valid, taxonomy_is_valid

__all__ = ["EXPORT_RULES", "check_claim", "export_holds"]

_SERIES_CODES = frozenset({"D0210", "D0709"})
_PA_BW_READ = frozenset({"D0220", "D0230", "D0270", "D0272", "D0273", "D0274", "D0277"})
_PA_BW_CAPTURE = frozenset({"D0707", "D0708"})
_PERIAPICAL_CODES = frozenset({"D0220", "D0230", "D0707"})
_PHOTO_CODES = frozenset({"D0350", "D0703"})
_TELEDENTISTRY_CODES = frozenset({"D9995", "D9996"})


def _numbers(lines: Iterable[ClaimLine]) -> tuple[int, ...]:
    return tuple(sorted({line.number for line in lines}))


def _lines_by_day(lines: Iterable[ClaimLine]) -> dict[date, list[ClaimLine]]:
    days: dict[date, list[ClaimLine]] = defaultdict(list)
    for line in lines:
        days[line.date_of_service].append(line)
    return dict(sorted(days.items()))


def _months_before(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def _codes_in_words(lines: Iterable[ClaimLine]) -> str:
    return ", ".join(dict.fromkeys(line.code for line in lines))


def _check_validity(claim: Claim) -> list[Edit]:
    edits = []
    for line in claim.lines:
        try:
            known = procedure(line.code)
        except UnknownCode:
            edits.append(
                Edit(
                    "code-validity",
                    "hold",
                    f"{line.code} is not a code this engine knows; check it before sending.",
                    (line.number,),
                )
            )
            continue
        if known.is_valid_on(line.date_of_service):
            continue
        if known.valid_from is not None and line.date_of_service < known.valid_from:
            why = f"it can be reported only from {known.valid_from}"
        else:
            why = f"it was retired after {known.valid_to}"
        edits.append(
            Edit(
                "code-validity",
                "hold",
                f"{line.code} is not valid for a service on {line.date_of_service}: {why}. Payers return such lines.",
                (line.number,),
            )
        )
    return edits


def _check_recognised(claim: Claim, profile: PayerProfile) -> list[Edit]:
    refused = [line for line in claim.lines if not profile.recognises(line.code)]
    if not refused:
        return []
    codes = _codes_in_words(refused)
    if all(line.code in CATALOGUE and CATALOGUE[line.code].category == CAPTURE_ONLY for line in refused):
        message = (
            f"{profile.name} does not accept capture-only codes ({codes}). The lines are kept as performed; the "
            "office must check the plan's instructions for reporting image capture before sending."
        )
    else:
        message = f"{profile.name} does not recognise {codes}; check the plan's instructions before sending."
    return [Edit("payer-code-not-recognised", "hold", message, _numbers(refused))]


def _check_first_periapical(claim: Claim) -> list[Edit]:
    edits = []
    for day, lines in _lines_by_day(claim.lines).items():
        additional = [line for line in lines if line.code == "D0230"]
        if additional and not any(line.code == "D0220" for line in lines):
            edits.append(
                Edit(
                    "d0230-needs-d0220",
                    "hold",
                    f"D0230 on {day} has no D0220 that day: an additional periapical needs the first one billed.",
                    _numbers(additional),
                )
            )
    return edits


def _check_complete_series(claim: Claim, profile: PayerProfile) -> list[Edit]:
    if not profile.complete_series_exclusive:
        return []
    edits = []
    for day, lines in _lines_by_day(claim.lines).items():
        series = [line for line in lines if line.code in _SERIES_CODES]
        excluded = [line for line in lines if line.code in _PA_BW_READ | _PA_BW_CAPTURE]
        if series and excluded:
            edits.append(
                Edit(
                    "complete-series-exclusive",
                    "hold",
                    f"{_codes_in_words(series)} on {day} already includes that day's periapicals and bitewings; "
                    f"{_codes_in_words(excluded)} will not be paid beside it. Remove them or split the series.",
                    _numbers(excluded),
                )
            )
    return edits


def _check_rebundling(claim: Claim, profile: PayerProfile) -> list[Edit]:
    comparator = profile.rebundle_comparator
    if comparator is None:
        return []
    schedule = claim.billing_organization.fee_schedule
    edits = []
    for series_code, family in (("D0210", _PA_BW_READ), ("D0709", _PA_BW_CAPTURE)):
        threshold = schedule.get(series_code, Decimal("0"))
        if threshold <= 0:
            continue  # without a series fee there is nothing to compare against
        for day, lines in _lines_by_day(claim.lines).items():
            chosen = [line for line in lines if line.code in family]
            if not chosen or any(line.code in _SERIES_CODES for line in lines):
                continue
            total = sum((line.charge for line in chosen), Decimal("0"))
            if total > threshold or (comparator == ">=" and total == threshold):
                reached = "reach" if comparator == ">=" else "exceed"
                edits.append(
                    Edit(
                        "complete-series-fee",
                        "warning",
                        f"Periapicals and bitewings on {day} total {total}, which {reached}s the {series_code} fee "
                        f"of {threshold}: the payer may pay them as a complete series and start its frequency clock.",
                        _numbers(chosen),
                    )
                )
    return edits


def _check_periapical_location(claim: Claim, profile: PayerProfile) -> list[Edit]:
    missing = [
        line for line in claim.lines if line.code in _PERIAPICAL_CODES and not (line.tooth or line.teeth or line.area)
    ]
    if not missing:
        return []
    return [
        Edit(
            "periapical-location",
            profile.periapical_location,
            "Periapical lines without a tooth or area are the commonest avoidable denial; add the tooth or area "
            "to the images.",
            _numbers(missing),
        )
    ]


def _prior_lines(claim: Claim, visit: VisitFacts, codes: tuple[str, ...], same_organization: bool) -> list[PriorLine]:
    return [
        prior
        for prior in visit.prior_lines
        if prior.code in codes
        and (not same_organization or prior.billing_organization_id == claim.billing_organization.id)
    ]


def _check_daily_caps(claim: Claim, visit: VisitFacts, profile: PayerProfile) -> list[Edit]:
    edits = []
    for cap in profile.daily_caps:
        prior = _prior_lines(claim, visit, cap.codes, cap.same_organization)
        for day, lines in _lines_by_day(claim.lines).items():
            capped = [line for line in lines if line.code in cap.codes]
            if not capped:
                continue
            earlier = sum(p.quantity for p in prior if p.date_of_service == day)
            units = sum(line.quantity for line in capped) + earlier
            if units > cap.max_units:
                already = f", {earlier} of them on earlier claims" if earlier else ""
                edits.append(
                    Edit(
                        "daily-cap",
                        "hold",
                        f"{'/'.join(cap.codes)}: {units} units on {day}{already}; the payer allows {cap.max_units} "
                        f"per day ({cap.note or 'payer limit'}).",
                        _numbers(capped),
                    )
                )
    return edits


def _check_frequencies(claim: Claim, visit: VisitFacts, profile: PayerProfile) -> list[Edit]:
    edits = []
    for rule in profile.frequencies:
        bucket = [line for line in claim.lines if line.code in rule.codes]
        if not bucket:
            continue
        prior = _prior_lines(claim, visit, rule.codes, rule.same_organization)
        offending: list[ClaimLine] = []
        earlier: set[tuple[str, date]] = set()
        for day in sorted({line.date_of_service for line in bucket}):
            start = _months_before(day, rule.months)
            occasions = {line.date_of_service for line in bucket if start < line.date_of_service <= day}
            found = {(p.code, p.date_of_service) for p in prior if start < p.date_of_service <= day}
            occasions |= {seen for _, seen in found}
            if len(occasions) > rule.max_occasions:
                offending += [line for line in bucket if line.date_of_service == day]
                earlier |= found
        if offending:
            history = ", ".join(
                f"{code} on {seen}" for code, seen in sorted(earlier, key=lambda item: (item[1], item[0]))
            )
            edits.append(
                Edit(
                    "frequency",
                    "hold",
                    f"{'/'.join(rule.codes)}: the payer allows {rule.max_occasions} per {rule.months} months "
                    f"({rule.note or 'payer limit'}); "
                    + (f"earlier claims already have {history}." if history else "this claim alone exceeds it."),
                    _numbers(offending),
                )
            )
    return edits


def _check_photo_only(claim: Claim) -> list[Edit]:
    procedures = [line for line in claim.lines if line.code not in _TELEDENTISTRY_CODES]
    if procedures and all(line.code in _PHOTO_CODES for line in procedures):
        return [
            Edit(
                "photos-only",
                "warning",
                "Photos are the only procedure on this claim; payers often deny them without the exam or "
                "treatment they support. Add a narrative or bill them with that procedure.",
                _numbers(procedures),
            )
        ]
    return []


def _check_reading(claim: Claim, visit: VisitFacts) -> list[Edit]:
    readings = [line for line in claim.lines if line.code == "D0391"]
    if not readings:
        return []
    edits = []
    if visit.report_signed_at is None:
        edits.append(
            Edit(
                "d0391-needs-signed-report",
                "hold",
                "D0391 bills a reading with its written report, and the report is not signed yet.",
                _numbers(readings),
            )
        )
    captured_by = {image.id: image.capturing_organization_id for image in visit.images}
    own = [
        line
        for line in readings
        if any(captured_by.get(image_id) == claim.billing_organization.id for image_id in line.image_ids)
    ]
    if own:
        edits.append(
            Edit(
                "d0391-reader-captured",
                "hold",
                "D0391 is only for a reader not associated with the capture, and this practice captured the image; "
                "bill the code that includes the reading instead.",
                _numbers(own),
            )
        )
    return edits


def _check_teledentistry_alone(claim: Claim) -> list[Edit]:
    # Per date of service: a teledentistry code is reported beside the procedures delivered that day, so a claim
    # whose other lines all fall on other dates leaves the code alone all the same.
    edits = []
    for day, lines in _lines_by_day(claim.lines).items():
        if all(line.code in _TELEDENTISTRY_CODES for line in lines):
            others = sorted({line.date_of_service for line in claim.lines} - {day})
            where = (
                f"its other procedures are dated {', '.join(map(str, others))}"
                if others
                else "it is the only procedure on this claim"
            )
            edits.append(
                Edit(
                    "teledentistry-alone",
                    "hold",
                    f"{_codes_in_words(lines)} on {day} has no other procedure that day ({where}); a teledentistry "
                    "code is reported beside the procedures it supports (the reading or the evaluation), on their "
                    "date.",
                    _numbers(lines),
                )
            )
    return edits


def check_claim(claim: Claim, visit: VisitFacts, profile: PayerProfile) -> tuple[Edit, ...]:
    """The payer edits for ``claim`` (its own ``edits`` are ignored); holds keep it from being sent."""
    return (
        *_check_validity(claim),
        *_check_recognised(claim, profile),
        *_check_reading(claim, visit),
        *_check_teledentistry_alone(claim),
        *_check_first_periapical(claim),
        *_check_complete_series(claim, profile),
        *_check_rebundling(claim, profile),
        *_check_periapical_location(claim, profile),
        *_check_daily_caps(claim, visit, profile),
        *_check_frequencies(claim, visit, profile),
        *_check_photo_only(claim),
    )


# -- what an 837D needs ----------------------------------------------------------------------------------------
#
# Each reason the 837D export would be refused is a hold, so that "ready" means "can be sent". The rule ids name
# the fact to fix; the pages link each to the page that fixes it (EXPORT_RULES: rule -> what is fixed where).

EXPORT_RULES: dict[str, str] = {
    "export-no-coverage": "patient",
    "export-no-subscriber": "patient",
    "export-patient-address": "patient",
    "export-no-fee": "fee_schedule",
    "export-billing-address": "practice",
    "export-billing-zip": "practice",
    "export-billing-phone": "practice",
    "export-billing-ids": "practice",
    "export-provider-ids": "provider",
}


def _plural(count: int, one: str, many: str) -> str:
    return one if count == 1 else many


def _in_words(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _address_complete(address: Address | None) -> bool:
    return address is not None and all(
        (value or "").strip() for value in (address.line1, address.city, address.state, address.zip))


def _zip_digits(address: Address) -> str:
    return "".join(ch for ch in address.zip if ch.isdigit())


def _coverage_holds(claim: Claim) -> list[Edit]:
    coverage = claim.coverage
    if coverage is None:
        return [Edit("export-no-coverage", "hold",
                     "The patient has no dental insurance on file, so there is no payer to send this claim to. "
                     "Add the patient's insurance (payer and member id) to the patient's details.")]
    if not coverage.patient_is_subscriber and coverage.subscriber is None:
        return [Edit("export-no-subscriber", "hold",
                     f"The patient is covered as the subscriber's {coverage.relationship}, but the subscriber (the "
                     "insured person) is not named. Add the subscriber's name on the patient's insurance.")]
    return []


def _fee_holds(claim: Claim) -> list[Edit]:
    unpriced = [line for line in claim.lines if line.fee <= 0]
    if not unpriced:
        return []
    codes = list(dict.fromkeys(line.code for line in unpriced))
    numbers = [str(line.number) for line in unpriced]
    message = (
        f"No fee is on file for {_in_words(codes)} ({_plural(len(numbers), 'line', 'lines')} {_in_words(numbers)}), "
        f"so {_plural(len(numbers), 'it', 'they')} would be sent at 0.00. Add "
        f"{_plural(len(codes), 'the fee', 'their fees')} to the practice's fee schedule."
    )
    return [Edit("export-no-fee", "hold", message, _numbers(unpriced))]


def _billing_holds(claim: Claim) -> list[Edit]:
    org = claim.billing_organization
    edits = []
    if not _address_complete(org.address):
        edits.append(Edit("export-billing-address", "hold",
                          f"The billing address of {org.name} is incomplete (street, city, state and ZIP code are "
                          "all needed). Complete it in the practice's details."))
    elif len(_zip_digits(org.address)) != 9:
        edits.append(Edit("export-billing-zip", "hold",
                          f"The billing ZIP code of {org.name} has {len(_zip_digits(org.address))} digits; a claim "
                          "needs the full ZIP+4 (9 digits, e.g. 95814-1234). Enter it in the practice's details."))
    if not (org.phone or "").strip() or not any(ch.isdigit() for ch in org.phone or ""):
        edits.append(Edit("export-billing-phone", "hold",
                          f"{org.name} has no phone number on file; the claim file names the billing office's "
                          "contact number. Add the practice's phone number."))
    problems = []
    if not npi_is_valid(org.npi or ""):
        problems.append("its NPI is missing or not a valid NPI")
    if len("".join(ch for ch in org.tax_id or "" if ch.isdigit())) != 9:
        problems.append("its tax id is not a nine-digit EIN")
    if problems:
        edits.append(Edit("export-billing-ids", "hold",
                          f"The billing practice {org.name} cannot be identified to the payer: "
                          f"{_in_words(problems)}. Correct it in the practice's details."))
    return edits


def _provider_problems(provider: ProviderFacts, needs_taxonomy: bool) -> list[str]:
    name = f"{provider.first_name} {provider.last_name}".strip() or "a provider"
    problems = []
    if not npi_is_valid(provider.npi or ""):
        problems.append(f"{name}'s NPI is missing or not valid")
    if needs_taxonomy and not taxonomy_is_valid(provider.taxonomy or ""):
        problems.append(f"{name}'s taxonomy code is missing or not valid (10 characters ending in X)")
    return problems


def _provider_holds(claim: Claim) -> list[Edit]:
    problems = _provider_problems(claim.rendering_provider, needs_taxonomy=True)
    if claim.referring_provider is not None:
        problems += _provider_problems(claim.referring_provider, needs_taxonomy=False)
    if not problems:
        return []
    return [Edit("export-provider-ids", "hold",
                 f"{_in_words(problems)[:1].upper()}{_in_words(problems)[1:]}. Correct the provider's details.")]


def export_holds(claim: Claim) -> tuple[Edit, ...]:
    """A hold for every reason the claim cannot be written as a valid 837D: insurance, addresses, fees, ids."""
    patient_address = [] if _address_complete(claim.patient.address) else [
        Edit("export-patient-address", "hold",
             "The patient's street address is missing; payers need it on every claim. Add it to the patient's "
             "details.")]
    return (*_coverage_holds(claim), *patient_address, *_fee_holds(claim), *_billing_holds(claim),
            *_provider_holds(claim))
