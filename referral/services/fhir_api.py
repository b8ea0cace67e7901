"""The read API's reads and searches: the JSON API's access rules and audit, answered with FHIR resources.

Every resource is found through the row it comes from, with the same access function the JSON API uses for
that row: a referral's resources (ServiceRequest, Task, ImagingStudy, Media, the consult note and its parts)
through ``access.get_referral``, a patient and its Coverage through ``access.get_patient``, claims through the
claims service's export rules. So another practice's record is not found, exactly as on the JSON API, and the
denied attempts are audited by the same functions. Each read or search writes one ``fhir.read`` or
``fhir.search`` audit row; a Claim that leaves is also recorded as a FHIR export of that claim, as
``GET /api/v1/claims/{id}/fhir`` records it.

Each function here is a service entry point: it commits once, at its end.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import InstrumentedAttribute, Session

from referral.billing.fhir_claim import to_fhir_claim
from referral.errors import NotFound
from referral.fhir import case_resources
from referral.fhir.bundle import (
    STUDY_DIGEST_LENGTH,
    coverage_resource,
    has_coverage,
    organization_resource,
    patient_resource,
    practitioner_resource,
    practitioner_role_resource,
)
from referral.fhir.terms import SERVICE_REQUEST_STATUS
from referral.models import Claim, Image, Organization, Patient, Provider, Referral, Report
from referral.models.enums import ReferralStatus
from referral.models.reports import ReportStatus
from referral.services import access, audit, claims
from referral.services.actor import Actor
from referral.services.pagination import page

Resource = dict[str, Any]

# The resources that belong to one referral, and how each one's id leads to that referral.
_REFERRAL_TYPES = frozenset({"ServiceRequest", "Task", "ImagingStudy"})
_UUID_LENGTH = 36
_IMAGE_TYPES = frozenset({"Media", "Observation"})
_REPORT_TYPES = frozenset({"DiagnosticReport", "Composition", "Encounter"})

# The referral statuses behind each ServiceRequest status (the inverse of the export's table).
REFERRAL_STATUSES_BY_REQUEST_STATUS: dict[str, tuple[ReferralStatus, ...]] = {
    code: tuple(status for status, exported in SERVICE_REQUEST_STATUS.items() if exported == code)
    for code in dict.fromkeys(SERVICE_REQUEST_STATUS.values())
}


def _not_found(resource_type: str, resource_id: str) -> NotFound:
    return NotFound(f"{resource_type}/{resource_id} not found")


def _canonical(resource_id: str, row_id: uuid.UUID) -> str:
    """An id as this server writes it: the row's UUID in its usual form, and any study digest in lower case."""
    if len(resource_id) == _UUID_LENGTH + 1 + STUDY_DIGEST_LENGTH:
        return f"{row_id}-{resource_id[-STUDY_DIGEST_LENGTH:].lower()}"
    return str(row_id)


def _uuid(resource_type: str, resource_id: str) -> uuid.UUID:
    """The row an id names. Every id this server hands out is a UUID, except an ImagingStudy's of a real study:
    the referral's UUID, a dash and a digest of the Study Instance UID. Anything else names nothing here."""
    row_part = resource_id
    if resource_type == "ImagingStudy" and len(resource_id) == _UUID_LENGTH + 1 + STUDY_DIGEST_LENGTH:
        row_part = resource_id[:_UUID_LENGTH]
    try:
        return uuid.UUID(row_part)
    except ValueError:
        raise _not_found(resource_type, resource_id) from None


# -- reads -----------------------------------------------------------------------------------------------


def read(session: Session, actor: Actor, resource_type: str, resource_id: str, base_url: str) -> Resource:
    """One resource by type and id, or NotFound (another practice's, like one that does not exist)."""
    row_id = _uuid(resource_type, resource_id)
    if resource_type == "Claim":
        claim = _read_claim(session, actor, row_id, resource_id)
        session.commit()
        return claim
    if resource_type in _REFERRAL_TYPES | _IMAGE_TYPES | _REPORT_TYPES:
        resource, referral = _read_case_resource(session, actor, resource_type, row_id, resource_id, base_url)
        audit.record(session, actor, "fhir.read", object_type="referral", object_id=referral.id,
                     organization_id=referral.organization_id, referral_id=referral.id,
                     details={"resource_type": resource_type, "id": resource_id})
    elif resource_type in ("Patient", "Coverage"):
        patient = _patient(session, actor, resource_type, row_id, resource_id)
        resource = patient_resource(patient) if resource_type == "Patient" else coverage_resource(patient)
        audit.record(session, actor, "fhir.read", object_type="patient", object_id=patient.id,
                     organization_id=patient.organization_id,
                     details={"resource_type": resource_type, "id": resource_id})
    elif resource_type == "Organization":
        organization = _organization(session, actor, row_id, resource_id)
        resource = organization_resource(organization)
        audit.record(session, actor, "fhir.read", object_type="organization", object_id=organization.id,
                     organization_id=organization.id, details={"resource_type": resource_type, "id": resource_id})
    elif resource_type in ("Practitioner", "PractitionerRole"):
        provider = _provider(session, actor, resource_type, row_id, resource_id)
        if resource_type == "Practitioner":
            resource = practitioner_resource(provider)
        else:
            resource = practitioner_role_resource(provider, session.get(Organization, provider.organization_id),
                                                  base_url)
        audit.record(session, actor, "fhir.read", object_type="provider", object_id=provider.id,
                     organization_id=provider.organization_id,
                     details={"resource_type": resource_type, "id": resource_id})
    else:
        raise NotFound(f"This server has no resources of type {resource_type}")
    session.commit()
    return resource


def _owning_referral_id(session: Session, resource_type: str, row_id: uuid.UUID) -> uuid.UUID | None:
    if resource_type in _REFERRAL_TYPES:
        return row_id
    if resource_type in _IMAGE_TYPES:
        image = session.get(Image, row_id)
        return image.referral_id if image is not None else None
    report = session.get(Report, row_id)
    return report.referral_id if report is not None else None


def _read_case_resource(session: Session, actor: Actor, resource_type: str, row_id: uuid.UUID, resource_id: str,
                        base_url: str) -> tuple[Resource, Referral]:
    referral_id = _owning_referral_id(session, resource_type, row_id)
    asked = ("referral" if resource_type in _REFERRAL_TYPES else "image" if resource_type in _IMAGE_TYPES
             else "report", row_id)
    try:
        referral = access.case_of(session, actor, referral_id, asked=asked)
    except NotFound:
        raise _not_found(resource_type, resource_id) from None
    resources = case_resources(session, referral, base_url, with_coverage=access.sees_patient_coverage(actor, referral))
    for resource in resources:
        if resource["resourceType"] == resource_type and resource["id"] == _canonical(resource_id, row_id):
            return resource, referral
    # The row is there but is not exported as this type (a draft report, an image sent as Media, not a series).
    raise _not_found(resource_type, resource_id)


def _patient(session: Session, actor: Actor, resource_type: str, row_id: uuid.UUID, resource_id: str) -> Patient:
    try:
        patient = access.get_patient(session, actor, row_id)
    except NotFound:
        raise _not_found(resource_type, resource_id) from None
    if resource_type == "Coverage" and not has_coverage(patient):
        raise _not_found(resource_type, resource_id)
    return patient


def _organization(session: Session, actor: Actor, row_id: uuid.UUID, resource_id: str) -> Organization:
    try:
        return access.get_organization(session, actor, row_id)
    except NotFound:
        raise _not_found("Organization", resource_id) from None


def _provider(session: Session, actor: Actor, resource_type: str, row_id: uuid.UUID, resource_id: str) -> Provider:
    """A provider of the caller's own practice (any, for a platform admin), as the JSON API lists them."""
    provider = session.get(Provider, row_id)
    if provider is None or (not actor.is_platform_admin and provider.organization_id != actor.organization_id):
        raise _not_found(resource_type, resource_id)
    return provider


def _claim_resource(session: Session, actor: Actor, claim: Claim) -> Resource:
    """The claim as it leaves, recorded as a FHIR export of it exactly as the JSON API records one."""
    claims.record_export(session, actor, claim, "fhir")
    model = claims.claim_model(session, claim)
    # The claim's own creation time, so that reading it twice gives the same resource.
    return to_fhir_claim(model, created=claim.created_at, resource_id=str(claim.id))


def _read_claim(session: Session, actor: Actor, row_id: uuid.UUID, resource_id: str) -> Resource:
    try:
        claim = claims.exportable(session, actor, row_id)
    except NotFound:
        raise _not_found("Claim", resource_id) from None
    return _claim_resource(session, actor, claim)


# -- searches --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Search:
    """A checked search: the resource type, each parameter's values, a page.

    A parameter given several times is a list of groups: the groups are ANDed, the comma-separated values
    of one group ORed, as FHIR searches combine them."""

    resource_type: str
    criteria: dict[str, list[list[str]]]
    count: int
    page_token: str | None = None


@dataclass
class SearchResult:
    resources: list[Resource]
    total: int | None  # None where counting would cost more than the page itself
    next_page_token: str | None


def reference_id(value: str, resource_type: str) -> uuid.UUID | None:
    """The id in a reference search value (``Type/id``, an absolute URL ending so, or a bare id); None when
    it names another type or no id of ours, which matches nothing."""
    type_part, _, id_part = value.rstrip("/").rpartition("/")
    if type_part and type_part.rpartition("/")[2] != resource_type:
        return None
    try:
        return uuid.UUID(id_part)
    except ValueError:
        return None


def _reference_ids(values: Sequence[str], resource_type: str) -> list[uuid.UUID]:
    return [found for found in (reference_id(v, resource_type) for v in values) if found is not None]


def _paged(session: Session, query: sa.Select[Any], order: list[InstrumentedAttribute[Any]], search: Search,
           count_total: bool) -> tuple[list[Any], int | None, str | None]:
    total = session.scalar(sa.select(sa.func.count()).select_from(query.subquery())) if count_total else None
    rows, next_token = page(session, query, order, search.page_token, search.count)
    return rows, total, next_token


def search(session: Session, actor: Actor, search: Search, base_url: str) -> SearchResult:
    """One page of a type's resources matching ``search``, among those the caller may see."""
    runner = _SEARCHES[search.resource_type]
    result, object_type, referral_id = runner(session, actor, search, base_url)
    audit.record(session, actor, "fhir.search", object_type=object_type, object_id=None,
                 organization_id=actor.organization_id, referral_id=referral_id,
                 details={"resource_type": search.resource_type, "count": len(result.resources),
                          "parameters": sorted(search.criteria)})
    session.commit()
    return result


_Runner = Callable[[Session, Actor, Search, str], tuple[SearchResult, str, uuid.UUID | None]]


def _visible_referrals(actor: Actor) -> sa.Select[Any]:
    access.require_role(actor, *access.CLINICAL_READ_ROLES)
    return sa.select(Referral).where(access.referral_visibility(actor))


def _groups(search: Search, parameter: str) -> list[list[str]]:
    return search.criteria.get(parameter, [])


def _only_referral(search: Search, parameter: str) -> uuid.UUID | None:
    """The referral a ``based-on`` search names, for the audit row, when it names exactly one."""
    ids = {i for group in _groups(search, parameter) for i in _reference_ids(group, "ServiceRequest")}
    return ids.pop() if len(ids) == 1 else None


def _case_resources_of(session: Session, actor: Actor, referrals: list[Referral], resource_type: str,
                       base_url: str) -> list[Resource]:
    return [resource for referral in referrals
            for resource in case_resources(session, referral, base_url,
                                           with_coverage=access.sees_patient_coverage(actor, referral))
            if resource["resourceType"] == resource_type]


def _search_service_requests(session: Session, actor: Actor, search: Search,
                             base_url: str) -> tuple[SearchResult, str, uuid.UUID | None]:
    query = _visible_referrals(actor)
    for group in _groups(search, "patient"):
        query = query.where(Referral.patient_id.in_(_reference_ids(group, "Patient")))
    for group in _groups(search, "status"):
        statuses = [s for code in group for s in REFERRAL_STATUSES_BY_REQUEST_STATUS[code]]
        query = query.where(Referral.status.in_(statuses))
    rows, total, token = _paged(session, query, [Referral.created_at, Referral.id], search, count_total=True)
    result = SearchResult(_case_resources_of(session, actor, rows, "ServiceRequest", base_url), total, token)
    return result, "referral", None


def _search_tasks(session: Session, actor: Actor, search: Search,
                  base_url: str) -> tuple[SearchResult, str, uuid.UUID | None]:
    query = _visible_referrals(actor)
    for group in _groups(search, "owner"):
        query = query.where(Referral.assigned_provider_id.in_(_reference_ids(group, "Practitioner")))
    rows, total, token = _paged(session, query, [Referral.created_at, Referral.id], search, count_total=True)
    return SearchResult(_case_resources_of(session, actor, rows, "Task", base_url), total, token), "referral", None


def _search_diagnostic_reports(session: Session, actor: Actor, search: Search,
                               base_url: str) -> tuple[SearchResult, str, uuid.UUID | None]:
    query = _visible_referrals(actor).join(Report, Report.referral_id == Referral.id).where(
        Report.status == ReportStatus.SIGNED)
    for group in _groups(search, "based-on"):
        query = query.where(Referral.id.in_(_reference_ids(group, "ServiceRequest")))
    rows, total, token = _paged(session, query, [Referral.created_at, Referral.id], search, count_total=True)
    result = SearchResult(_case_resources_of(session, actor, rows, "DiagnosticReport", base_url), total, token)
    return result, "referral", _only_referral(search, "based-on")


def _search_imaging_studies(session: Session, actor: Actor, search: Search,
                            base_url: str) -> tuple[SearchResult, str, uuid.UUID | None]:
    query = _visible_referrals(actor)
    for group in _groups(search, "based-on"):
        query = query.where(Referral.id.in_(_reference_ids(group, "ServiceRequest")))
    # Which images make a study is only known once the case is built, so a page holds the studies of a page
    # of referrals, and no total is given (counting would mean building every case).
    rows, _, token = _paged(session, query, [Referral.created_at, Referral.id], search, count_total=False)
    result = SearchResult(_case_resources_of(session, actor, rows, "ImagingStudy", base_url), None, token)
    return result, "referral", _only_referral(search, "based-on")


def _search_claims(session: Session, actor: Actor, search: Search,
                   _base_url: str) -> tuple[SearchResult, str, uuid.UUID | None]:
    # Exactly the JSON API's FHIR claim export: billing staff, their own practice's claims.
    access.require_role(actor, *claims.BILLING_ROLES)
    organization_id, _ = access.membership(actor)
    query = (sa.select(Claim).join(Referral, Referral.id == Claim.referral_id)
             .join(Patient, Patient.id == Referral.patient_id)
             # A deleted patient's claims can no longer be exported (409 when read by id): a search skips them.
             .where(Claim.billing_organization_id == organization_id, Patient.deleted_at.is_(None)))
    for group in _groups(search, "patient"):
        query = query.where(Referral.patient_id.in_(_reference_ids(group, "Patient")))
    rows, total, token = _paged(session, query, [Claim.created_at, Claim.id], search, count_total=True)
    return SearchResult([_claim_resource(session, actor, row) for row in rows], total, token), "claim", None


def _patient_ids(values: Sequence[str]) -> list[uuid.UUID]:
    """Patients are identified by ``urn:ietf:rfc:3986|urn:uuid:<id>`` (the system may be left out)."""
    found = []
    for value in values:
        system, bar, code = value.partition("|")
        if not bar:
            system, code = "", value
        if system not in ("", "urn:ietf:rfc:3986") or not code.startswith("urn:uuid:"):
            continue
        try:
            found.append(uuid.UUID(code.removeprefix("urn:uuid:")))
        except ValueError:
            continue
    return found


def _search_patients(session: Session, actor: Actor, search: Search,
                     _base_url: str) -> tuple[SearchResult, str, uuid.UUID | None]:
    # As the JSON API's patient list: the caller's practice's live patients.
    access.require_role(actor, *access.CLINICAL_READ_ROLES)
    organization_id, _ = access.membership(actor)
    query = sa.select(Patient).where(Patient.organization_id == organization_id, Patient.deleted_at.is_(None))
    for group in _groups(search, "identifier"):
        query = query.where(Patient.id.in_(_patient_ids(group)))
    rows, total, token = _paged(session, query, [Patient.created_at, Patient.id], search, count_total=True)
    return SearchResult([patient_resource(row) for row in rows], total, token), "patient", None


_SEARCHES: dict[str, _Runner] = {
    "ServiceRequest": _search_service_requests,
    "Task": _search_tasks,
    "DiagnosticReport": _search_diagnostic_reports,
    "ImagingStudy": _search_imaging_studies,
    "Claim": _search_claims,
    "Patient": _search_patients,
}
