"""The DICOM listener: C-ECHO, Modality Worklist C-FIND and C-STORE for a practice's registered devices.

pynetdicom runs each association on its own thread; every handler opens its own session from the factory
(one transaction per service call) and answers only after that call has committed, so a status of success
always names an image that is stored and recorded.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import ssl
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import (
    DigitalIntraOralXRayImageStorageForPresentation,
    DigitalIntraOralXRayImageStorageForProcessing,
    DigitalXRayImageStorageForPresentation,
    DigitalXRayImageStorageForProcessing,
)
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, evt
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    ComputedRadiographyImageStorage,
    ModalityWorklistInformationFind,
    SecondaryCaptureImageStorage,
    Verification,
    VLPhotographicImageStorage,
)
from pynetdicom.transport import ThreadedAssociationServer
from sqlalchemy.orm import Session, sessionmaker

from referral.dicom_net import worklist_keys
from referral.services import dicom_network
from referral.services.dicom_network import Peer, Received, StoreRefused
from referral.services.intake import Upload
from storage import Storage

log = logging.getLogger(__name__)
# pynetdicom logs each worklist query's identifier (patient names, birth dates) at INFO: keep only its warnings.
logging.getLogger("pynetdicom").setLevel(logging.WARNING)

STORAGE_SOP_CLASSES = (
    DigitalIntraOralXRayImageStorageForPresentation,
    DigitalIntraOralXRayImageStorageForProcessing,
    DigitalXRayImageStorageForPresentation,
    DigitalXRayImageStorageForProcessing,
    ComputedRadiographyImageStorage,
    VLPhotographicImageStorage,
    SecondaryCaptureImageStorage,
)
# Data elements whose words can name the kind of image (bitewing, occlusal, ...).
_DESCRIPTIONS = ("SeriesDescription", "ImageComments", "ProtocolName", "StudyDescription",
                 "AcquisitionDeviceProcessingDescription", "ViewPosition")


@dataclass(frozen=True)
class ListenerConfig:
    host: str
    port: int
    ae_title: str
    max_bytes: int
    tls_cert: str | None = None
    tls_key: str | None = None
    spool_dir: str | None = None


@dataclass
class _Open:
    """An accepted association: the device, and what it asked for (for the closing audit row)."""

    peer: Peer
    counts: dict[str, int] = field(default_factory=lambda: {"echo": 0, "find": 0, "stored": 0, "duplicates": 0,
                                                              "refused": 0})


class Listener:
    def __init__(self, config: ListenerConfig, factory: sessionmaker[Session], store: Storage) -> None:
        self.config = config
        self.factory = factory
        self.store = store
        self._open: dict[int, _Open] = {}
        self._lock = threading.Lock()
        self.ae = AE(ae_title=config.ae_title)
        self.ae.require_called_aet = True
        self.ae.maximum_associations = 20
        self.ae.add_supported_context(Verification)
        self.ae.add_supported_context(ModalityWorklistInformationFind)
        for sop_class in STORAGE_SOP_CLASSES:
            self.ae.add_supported_context(sop_class, ALL_TRANSFER_SYNTAXES)
        self.server: ThreadedAssociationServer | None = None

    # -- lifecycle -------------------------------------------------------------------------------------------

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.config.tls_cert:
            return None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.config.tls_cert, self.config.tls_key)
        return context

    def start(self) -> ThreadedAssociationServer:
        handlers: list[Any] = [
            (evt.EVT_REQUESTED, self._on_requested),
            (evt.EVT_RELEASED, self._on_ended, ["released"]),
            (evt.EVT_ABORTED, self._on_ended, ["aborted"]),
            (evt.EVT_CONN_CLOSE, self._on_ended, ["closed"]),
            (evt.EVT_C_ECHO, self._on_echo),
            (evt.EVT_C_FIND, self._on_find),
            (evt.EVT_C_STORE, self._on_store),
        ]
        server = self.ae.start_server((self.config.host, self.config.port), block=False,
                                      ssl_context=self.ssl_context(), evt_handlers=handlers)
        if server is None:
            raise RuntimeError("the DICOM listener did not start")
        self.server = server
        return server

    @property
    def port(self) -> int:
        assert self.server is not None  # noqa: S101 - started first
        return int(self.server.server_address[1])

    def stop(self) -> None:
        running = list(self.ae.active_associations)
        if self.server is not None:
            self.server.shutdown()
            self.server = None
        self.ae.shutdown()
        # Aborted associations still run their closing handlers (the audit row of their outcome): wait for them,
        # so nothing of theirs is left holding a database connection once the listener has stopped.
        for association in running:
            association.join(timeout=10)

    # -- associations ----------------------------------------------------------------------------------------

    def _on_requested(self, event: evt.Event) -> None:
        primitive: Any = event.assoc.requestor.primitive
        calling = str(primitive.calling_ae_title or "")
        called = str(primitive.called_ae_title or "")
        address = str(event.assoc.requestor.address)
        try:
            with self.factory() as session:
                peer = dicom_network.authorize_association(session, calling, called, address, self.config.ae_title)
        except Exception as exc:
            log.error("could not check a DICOM association request (%s); rejected", type(exc).__name__)
            peer = None
        if peer is None:
            # Rejected permanent, by the service user, calling AE title not recognised.
            # (pynetdicom's own rejection steps: the A-ASSOCIATE-RJ, the rejected flag, then the association ended.)
            event.assoc.acse.send_reject(0x01, 0x01, 0x03)
            event.assoc.is_rejected = True
            event.assoc.kill()
            return
        with self._lock:
            self._open[id(event.assoc)] = _Open(peer)

    def _peer(self, event: evt.Event) -> _Open | None:
        with self._lock:
            return self._open.get(id(event.assoc))

    def _on_ended(self, event: evt.Event, how: str) -> None:
        with self._lock:
            opened = self._open.pop(id(event.assoc), None)
        if opened is None:
            return
        try:
            with self.factory() as session:
                dicom_network.record_association_end(session, opened.peer, how, opened.counts)
        except Exception as exc:
            log.error("could not audit the end of a DICOM association (%s)", type(exc).__name__)

    # -- services --------------------------------------------------------------------------------------------

    def _on_echo(self, event: evt.Event) -> int:
        opened = self._peer(event)
        if opened is None:
            return 0x0124
        opened.counts["echo"] += 1
        return 0x0000

    def _on_find(self, event: evt.Event) -> Iterator[tuple[int | Dataset, Dataset | None]]:
        opened = self._peer(event)
        if opened is None:
            yield 0x0124, None
            return
        opened.counts["find"] += 1
        try:
            request = event.identifier
            query = worklist_keys.parse_query(request)
        except worklist_keys.BadQuery as exc:
            status = Dataset()
            status.Status = 0xA900
            status.ErrorComment = str(exc)[:64]
            yield status, None
            return
        except Exception:
            log.warning("a worklist query could not be read")
            yield 0xC000, None
            return
        try:
            with self.factory() as session:
                items = dicom_network.worklist(session, opened.peer, query)
        except Exception as exc:
            log.error("a worklist query failed (%s)", type(exc).__name__)
            yield 0xC001, None
            return
        for item in items:
            if event.is_cancelled:
                yield 0xFE00, None
                return
            yield 0xFF00, worklist_keys.answer(request, item, opened.peer)
        yield 0x0000, None

    def _on_store(self, event: evt.Event) -> Dataset | int:
        opened = self._peer(event)
        if opened is None:
            return 0x0124
        try:
            return self._store(event, opened)
        except Exception as exc:
            log.error("a received DICOM instance could not be filed (%s)", type(exc).__name__)
            opened.counts["refused"] += 1
            return _status(dicom_network.STATUS_PROCESSING_FAILURE, "The image could not be filed; send it again")

    def _store(self, event: evt.Event, opened: _Open) -> Dataset | int:
        request: Any = event.request
        encoded: bytes = request.DataSet.getvalue()
        if len(encoded) > self.config.max_bytes:
            opened.counts["refused"] += 1
            return _status(dicom_network.STATUS_REFUSED_FILE, "The image is larger than the server accepts")
        dataset = event.dataset
        meta: FileMetaDataset = event.file_meta
        description = " ".join(str(dataset.get(keyword, "") or "") for keyword in _DESCRIPTIONS)
        fd, path = tempfile.mkstemp(prefix="dicom-", suffix=".dcm", dir=self.config.spool_dir)
        try:
            with os.fdopen(fd, "w+b") as spool:
                spool.write(b"\x00" * 128 + b"DICM")
                write_file_meta_info(spool, meta, enforce_standard=True)  # type: ignore[arg-type]
                spool.write(encoded)
                spool.flush()
                size = spool.tell()
                spool.seek(0)
                digest = hashlib.sha256()
                for chunk in iter(lambda: spool.read(1024 * 1024), b""):
                    digest.update(chunk)
                spool.seek(0)
                received = Received(
                    upload=Upload(stream=spool, size=size, sha256=digest.hexdigest(), filename=None),
                    accession_number=str(dataset.get("AccessionNumber", "") or "") or None,
                    sop_instance_uid=str(meta.get("MediaStorageSOPInstanceUID", "") or "") or None,
                    sop_class_uid=str(meta.get("MediaStorageSOPClassUID", "") or "") or None,
                )
                try:
                    with self.factory() as session:
                        filed = dicom_network.file_received(session, self.store, opened.peer, received,
                                                            description=description)
                except StoreRefused as refused:
                    opened.counts["refused"] += 1
                    return _status(refused.status, refused.comment)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        opened.counts["duplicates" if filed.duplicate else "stored"] += 1
        return 0x0000


def _status(code: int, comment: str) -> Dataset:
    status = Dataset()
    status.Status = code
    # ErrorComment is an LO value: 64 characters at most, no backslash.
    status.ErrorComment = comment.replace("\\", "/")[:64]
    return status


def listener_config(settings: Any) -> ListenerConfig:
    return ListenerConfig(host=settings.dicom_host, port=settings.dicom_port, ae_title=settings.dicom_ae_title,
                          max_bytes=settings.max_upload_bytes, tls_cert=settings.dicom_tls_cert,
                          tls_key=settings.dicom_tls_key, spool_dir=settings.upload_tmp_dir)
