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
    phone: str | None = None  # the billing office's contact number (the 837D submitter contact)


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


# How the patient is related to the insured person, and the X12 individual relationship code for each: SBR02 carries
# 18 when the patient is the subscriber, PAT01 carries the others (claims-lifecycle.md §1).
RELATIONSHIP_CODES: dict[str, str] = {"self": "18", "spouse": "01", "child": "19", "other": "G8"}


@dataclass(frozen=True)
class SubscriberFacts:
    """The insured person when the patient is a dependant: 2010BA names them, with the member id."""

    first_name: str
    last_name: str
    birth_date: date | None = None
    sex: str | None = None  # F, M or U
    address: Address | None = None


@dataclass(frozen=True)
class CoverageFacts:
    payer_id: str
    payer_name: str
    member_id: str  # the subscriber's member id, also for a dependant
    group_number: str | None = None
    relationship: str = "self"  # self, spouse, child, other (RELATIONSHIP_CODES)
    subscriber: SubscriberFacts | None = None  # None when the patient is the subscriber

    @property
    def patient_is_subscriber(self) -> bool:
        return self.relationship == "self"


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
    # Where the image was taken when that is not the visit's site (place-of-service code); None: the visit's site
    # for the visit's capturing practice, unknown for anyone else.
    place_of_service: str | None = None


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
    # For the claims' default narratives: who took the images (by ImageFacts.capturing_provider_id), the case's
    # clinical reason, and the day the case went to the reader.
    capturing_providers: tuple[ProviderFacts, ...] = ()
    reason: str | None = None
    sent_on: date | None = None

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
    # Where this line was performed when that differs from the claim's place of service (SV303); None: the claim's.
    place_of_service: str | None = None
    # What the line's date is: "capture" (the day the images were taken), "reading" (the day the report was signed)
    # or "visit" (the day of the visit the line accompanies). DATE_BASES says it in words.
    date_basis: str = ""
    # The PWK report type the payer wants attached for this line (RB radiographs, DG report...), or None.
    attachment: str | None = None

    @property
    def charge(self) -> Decimal:
        return self.fee * self.quantity


DATE_BASES: dict[str, str] = {
    "capture": "the day the images were taken",
    "reading": "the day the reading's report was signed",
    "visit": "the day of the visit whose procedures it accompanies",
}


@dataclass(frozen=True)
class Attachment:
    """Documentation the payer wants with the claim (one PWK in loop 2300).

    ``control_number`` is the attachment package's number (PWK06 after the AC qualifier); it is None until the
    package exists, and a claim whose attachment needs one cannot be exported without it.
    """

    report_type: str  # PWK01: RB radiographs, RR radiology report, DG diagnostic report, OZ support data...
    transmission: str = "EL"  # PWK02: EL electronic, FT file transfer, BM mail, FX fax, EM e-mail, AA on request
    control_number: str | None = None
    line_numbers: tuple[int, ...] = ()  # the lines this documentation supports

    @property
    def needs_control_number(self) -> bool:
        return self.transmission != "AA"


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
    frequency: str = "1"  # CLM05-3: 1 original, 7 replacement, 8 void
    # The payer's number for the claim being replaced or voided (835 CLP07), sent as REF*F8 with frequency 7 or 8.
    payer_claim_number: str | None = None
    # CLM01 when the caller chose it; None: made from the referral id (x12.patient_control_number).
    patient_control_number: str | None = None
    narrative: str = ""  # the claim note (NTE*ADD), at most 80 characters of the X12 basic character set
    attachments: tuple[Attachment, ...] = ()

    @property
    def total(self) -> Decimal:
        return sum((line.charge for line in self.lines), Decimal("0"))

    @property
    def status(self) -> str:
        return "hold" if any(edit.severity == "hold" for edit in self.edits) else "ready"
