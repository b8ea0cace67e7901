"""The DICOM listener under test, and the sensor software's side: registered devices, DICOM files that name a
referral's accession number, and pynetdicom / dcmtk clients."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import AE
from pynetdicom.sop_class import ModalityWorklistInformationFind, Verification  # type: ignore[attr-defined]

from referral.dicom_net.listener import Listener, ListenerConfig
from referral.models import AuditEvent, Image
from tests.support import samples
from tests.support.world import Practice

LISTENER_AE = "REFERRAL"


@contextmanager
def running_listener(app: Flask, *, tls_cert: str | None = None, tls_key: str | None = None,
                     host: str = "127.0.0.1") -> Iterator[Listener]:
    """The listener on a free port of ``host``, serving ``app``'s database and store from this process."""
    config = ListenerConfig(host=host, port=0, ae_title=LISTENER_AE, max_bytes=8 * 1024 * 1024,
                            tls_cert=tls_cert, tls_key=tls_key)
    listener = Listener(config, app.extensions["referral.sessionmaker"], app.extensions["referral.storage"])
    listener.start()
    try:
        yield listener
    finally:
        listener.stop()


def register_device(practice: Practice, ae_title: str, host: str | None = "127.0.0.1",
                    description: str = "Operatory 1 sensor") -> dict[str, Any]:
    body: dict[str, Any] = {"ae_title": ae_title, "description": description}
    if host is not None:
        body["host"] = host
    response = practice.org_admin.post(f"/api/v1/organizations/{practice.id}/dicom-devices", body)
    assert response.status_code == 201, response.get_json()
    return dict(response.get_json())


def radiograph(path: Path, accession: str | None, *, sop_instance_uid: str | None = None,
               **overrides: Any) -> Path:
    """An intra-oral radiograph of the world's patient (Jane Doe, 1980-01-01) naming ``accession``."""
    uid = sop_instance_uid or generate_uid()
    extra = overrides.pop("mutate", None)

    def mutate(ds: Dataset) -> None:
        if accession is not None:
            ds.AccessionNumber = accession
        ds.SOPInstanceUID = uid
        ds.file_meta.MediaStorageSOPInstanceUID = uid
        if extra is not None:
            extra(ds)

    path.write_bytes(samples.dicom_bytes(mutate=mutate, **overrides))
    return path


def store_with_pynetdicom(port: int, paths: list[Path], *, calling_ae: str = "SENSOR1",
                          tls_args: Any = None) -> list[int]:
    """C-STORE each file in one association; the status of each (or -1 when no answer came)."""
    ae = AE(ae_title=calling_ae)
    sop_classes = {str(dcmread(p, stop_before_pixels=True).SOPClassUID) for p in paths}
    for sop_class in sop_classes:
        ae.add_requested_context(sop_class)
    assoc = ae.associate("127.0.0.1", port, ae_title=LISTENER_AE, tls_args=tls_args)
    assert assoc.is_established, "association was not accepted"
    statuses = []
    try:
        for path in paths:
            status = assoc.send_c_store(dcmread(path))
            statuses.append(int(status.Status) if "Status" in status else -1)
    finally:
        assoc.release()
    return statuses


def association_refused(port: int, calling_ae: str, *, called_ae: str = LISTENER_AE) -> bool:
    ae = AE(ae_title=calling_ae)
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", port, ae_title=called_ae)
    if assoc.is_established:
        assoc.release()
        return False
    return bool(assoc.is_rejected)


def echo(port: int, calling_ae: str = "SENSOR1", tls_args: Any = None) -> int:
    ae = AE(ae_title=calling_ae)
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", port, ae_title=LISTENER_AE, tls_args=tls_args)
    assert assoc.is_established
    try:
        return int(assoc.send_c_echo().Status)
    finally:
        assoc.release()


def worklist_query(**keys: Any) -> Dataset:
    """A worklist identifier asking for the usual return keys, with ``keys`` (and ``modality``,
    ``scheduled_date``, ``station``) as matching values."""
    ds = Dataset()
    ds.PatientName = keys.get("PatientName", "")
    ds.PatientID = keys.get("PatientID", "")
    ds.PatientBirthDate = keys.get("PatientBirthDate", "")
    ds.PatientSex = keys.get("PatientSex", "")
    ds.AccessionNumber = keys.get("AccessionNumber", "")
    ds.StudyInstanceUID = ""
    ds.RequestedProcedureDescription = ""
    ds.RequestedProcedureID = ""
    step = Dataset()
    step.Modality = keys.get("modality", "")
    step.ScheduledStationAETitle = keys.get("station", "")
    step.ScheduledProcedureStepStartDate = keys.get("scheduled_date", "")
    step.ScheduledProcedureStepStartTime = ""
    step.ScheduledProcedureStepDescription = ""
    step.ScheduledPerformingPhysicianName = ""
    ds.ScheduledProcedureStepSequence = [step]
    return ds


def find_worklist(port: int, query: Dataset, calling_ae: str = "SENSOR1") -> tuple[list[Dataset], int]:
    """The matches and the final status of a Modality Worklist C-FIND."""
    ae = AE(ae_title=calling_ae)
    ae.add_requested_context(ModalityWorklistInformationFind)
    assoc = ae.associate("127.0.0.1", port, ae_title=LISTENER_AE)
    assert assoc.is_established
    found: list[Dataset] = []
    final = -1
    try:
        for status, identifier in assoc.send_c_find(query, ModalityWorklistInformationFind):
            code = int(status.Status)
            if code in (0xFF00, 0xFF01):
                found.append(identifier)
            else:
                final = code
    finally:
        assoc.release()
    return found, final


def dcmtk(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, check=False)


def images_of(app: Flask, referral_id: str) -> list[Image]:
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        return list(session.scalars(sa.select(Image).where(Image.referral_id == uuid.UUID(referral_id))
                                    .order_by(Image.id)).all())


def audit_actions(app: Flask, prefix: str) -> list[AuditEvent]:
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        return list(session.scalars(sa.select(AuditEvent).where(AuditEvent.action.startswith(prefix))
                                    .order_by(AuditEvent.at)).all())

