"""The engine's input (facts about one referral visit) and output (claims). Plain, immutable data so
that the rules can be tested without a database and exported without knowing where facts came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

# -- input -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Address:
    line1: str
    city: str
    state: str
    zip: str
    line2: str | None = None


@dataclass(frozen=True)
class OrganizationFacts:
    """A billing organization (practice)."""

    id: str
    name: str
    npi: str
    tax_id: str
    address: Address
    fee_schedule: dict[str, Decimal] = field(default_factory=dict)


@dataclass(frozen=True)
class ProviderFacts:
    id: str
    organization_id: str
    first_name: str
    last_name: str
    npi: str
    taxonomy: str
    credentials: str | None = None


@dataclass(frozen=True)
class PatientFacts:
    id: str
    first_name: str
    last_name: str
    birth_date: date
    sex: str  # F, M or U
    state: str
    address: Address | None = None


@dataclass(frozen=True)
class CoverageFacts:
    payer_id: str
    payer_name: str
    member_id: str
    group_number: str | None = None
    relationship: str = "self"  # self, spouse, child, other


@dataclass(frozen=True)
class ImageFacts:
    """One captured image as billing sees it."""

    id: str
    kind: str  # periapical, bitewing, occlusal, panoramic, cephalometric, extraoral_posterior,
    #            complete_series, photo_intraoral, photo_extraoral, cbct_limited
    captured_on: date
    capturing_organization_id: str
    capturing_provider_id: str
    teeth: tuple[str, ...] = ()
    area: str | None = None
    retake_of: str | None = None
    nondiagnostic: bool = False
    series_id: str | None = None  # images of one complete series share it


@dataclass(frozen=True)
class PriorLine:
    """A line of one of the patient's earlier claims, for frequency limits."""

    code: str
    date_of_service: date
    tooth: str | None = None
    billing_organization_id: str | None = None
    quantity: int = 1  # units on that line; per-day caps count units, not lines


@dataclass(frozen=True)
class VisitFacts:
    referral_id: str
    patient: PatientFacts
    coverage: CoverageFacts | None
    capturing_organization: OrganizationFacts
    referring_provider: ProviderFacts
    images: tuple[ImageFacts, ...]
    mode: str  # asynchronous or synchronous
    place_of_service: str  # the physical capture site, e.g. 11 office, 03 school, 12 home
    reader_organization: OrganizationFacts | None = None
    reader_provider: ProviderFacts | None = None
    report_signed_at: datetime | None = None  # None: no signed report yet
    evaluation_performed: bool = False  # by the reader
    capturing_office_interpreted: bool = False  # the capturing office also read its images itself
    capturing_office_evaluation: bool = False  # the capturing dentist examined the patient
    prior_lines: tuple[PriorLine, ...] = ()
    claim_frequency: str = "1"  # 1 original, 7 replacement, 8 void

    @property
    def patient_at_home(self) -> bool:
        return self.place_of_service == "12"


# -- output ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClaimLine:
    number: int  # 1-based within the claim
    code: str
    quantity: int
    fee: Decimal  # per unit, from the billing organization's fee schedule
    date_of_service: date
    control_number: str  # unique per line; REF*6R in the 837D
    explanation: str  # which rule produced the line, in a billing clerk's words
    rule: str  # rule id, e.g. "capture-only.periapical"
    tooth: str | None = None
    teeth: tuple[str, ...] = ()  # when one line names several teeth (quantity 1)
    area: str | None = None
    surfaces: str | None = None
    image_ids: tuple[str, ...] = ()

    @property
    def charge(self) -> Decimal:
        return self.fee * self.quantity


@dataclass(frozen=True)
class Edit:
    rule: str
    severity: str  # warning or hold
    message: str
    line_numbers: tuple[int, ...] = ()


@dataclass(frozen=True)
class Claim:
    billing_organization: OrganizationFacts
    role: str  # capture, interpretation or single
    rendering_provider: ProviderFacts
    place_of_service: str
    date_of_service: date
    payer_profile: str
    lines: tuple[ClaimLine, ...]
    edits: tuple[Edit, ...]
    patient: PatientFacts
    coverage: CoverageFacts | None
    referral_id: str
    referring_provider: ProviderFacts | None = None  # on the reader's claim
    frequency: str = "1"

    @property
    def total(self) -> Decimal:
        return sum((line.charge for line in self.lines), Decimal("0"))

    @property
    def status(self) -> str:
        return "hold" if any(edit.severity == "hold" for edit in self.edits) else "ready"
