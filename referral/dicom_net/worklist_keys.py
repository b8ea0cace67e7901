"""Modality Worklist keys: a C-FIND identifier read into a query, and a worklist item written as the answer.

The answer holds the keys the request asked for (an empty key asks for its value), and the main keys a
sensor needs to file its images (accession number, patient, Study Instance UID, the scheduled step) even when
the request left them out.
"""

from __future__ import annotations

import re
from datetime import date

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from referral.services.dicom_network import (
    WORKLIST_MODALITY,
    DateRange,
    Peer,
    WorklistItem,
    WorklistQuery,
    sex_code,
)

_DATE = re.compile(r"\d{8}")


class BadQuery(ValueError):
    """A matching key that cannot be read (a malformed date or range)."""


def _parse_date(text: str) -> date:
    if not _DATE.fullmatch(text):
        raise BadQuery("Dates are written YYYYMMDD")
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        raise BadQuery("Not a calendar date") from None


def parse_range(value: object) -> DateRange | None:
    """A DA matching value: a date, ``from-``, ``-to`` or ``from-to``; empty matches everything."""
    text = str(value or "").strip().replace(".", "")
    if not text:
        return None
    if "-" not in text:
        day = _parse_date(text)
        return DateRange(day, day)
    start, _, end = text.partition("-")
    return DateRange(_parse_date(start.strip()) if start.strip() else None,
                     _parse_date(end.strip()) if end.strip() else None)


def _text(dataset: Dataset, keyword: str) -> str | None:
    value = dataset.get(keyword)
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def parse_query(identifier: Dataset) -> WorklistQuery:
    step = Dataset()
    steps = identifier.get("ScheduledProcedureStepSequence")
    if steps:
        step = steps[0]
    return WorklistQuery(
        patient_name=_text(identifier, "PatientName"),
        patient_id=_text(identifier, "PatientID"),
        accession_number=_text(identifier, "AccessionNumber"),
        birth_date=parse_range(identifier.get("PatientBirthDate")),
        sex=_text(identifier, "PatientSex"),
        modality=_text(step, "Modality") or _text(identifier, "Modality"),
        scheduled_date=parse_range(step.get("ScheduledProcedureStepStartDate")),
        scheduled_station_ae_title=_text(step, "ScheduledStationAETitle"),
    )


def _step(item: WorklistItem, peer: Peer) -> Dataset:
    step = Dataset()
    step.ScheduledStationAETitle = peer.ae_title
    step.ScheduledProcedureStepStartDate = item.scheduled_at.strftime("%Y%m%d")
    step.ScheduledProcedureStepStartTime = item.scheduled_at.strftime("%H%M%S")
    step.Modality = WORKLIST_MODALITY
    step.ScheduledPerformingPhysicianName = ""
    step.ScheduledProcedureStepDescription = item.procedure_description
    step.ScheduledProcedureStepID = item.accession_number
    step.ScheduledProcedureStepStatus = "SCHEDULED"
    return step


def full_item(item: WorklistItem, peer: Peer) -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.AccessionNumber = item.accession_number
    ds.PatientName = f"{item.patient_family_name}^{item.patient_given_name}"
    ds.PatientID = item.patient_id
    ds.PatientBirthDate = item.patient_birth_date.strftime("%Y%m%d")
    ds.PatientSex = sex_code(item.patient_sex)
    ds.StudyInstanceUID = item.study_instance_uid
    ds.RequestedProcedureID = item.accession_number
    ds.RequestedProcedureDescription = item.procedure_description
    ds.ReferringPhysicianName = ""
    ds.ScheduledProcedureStepSequence = Sequence([_step(item, peer)])
    return ds


# Always answered, asked for or not: what a sensor needs to take the case and file its images.
_ALWAYS = ("SpecificCharacterSet", "AccessionNumber", "PatientName", "PatientID", "PatientBirthDate", "PatientSex",
           "StudyInstanceUID", "RequestedProcedureDescription", "ScheduledProcedureStepSequence")


def answer(request: Dataset, item: WorklistItem, peer: Peer) -> Dataset:
    """The worklist item with the keys the request asked for; keys this server does not hold come back empty."""
    full = full_item(item, peer)
    result = Dataset()
    for keyword in _ALWAYS:
        setattr(result, keyword, full.get(keyword))
    for element in request:
        keyword = element.keyword
        if not keyword or keyword in result:
            continue
        if keyword in full:
            result[element.tag] = full[element.tag]
        elif element.VR != "SQ":
            result.add_new(element.tag, element.VR, None)
    requested_steps = request.get("ScheduledProcedureStepSequence")
    if requested_steps:
        step = full.ScheduledProcedureStepSequence[0]
        for element in requested_steps[0]:
            if element.keyword and element.keyword not in step and element.VR != "SQ":
                step.add_new(element.tag, element.VR, None)
        result.ScheduledProcedureStepSequence = Sequence([step])
    return result
