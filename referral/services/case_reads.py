"""The audited case, report, image and list reads on PostgreSQL, each in one statement.

``referrals.read_referral`` loads a case through the ORM: about five statements, then an object for every image,
capturer and event, which is where most of a read's CPU went on a case of many images. Here one statement does the
same work: its WHERE clause is the access rule (``access.referral_visibility``), a data-modifying CTE inserts the
audit row ``audit.record`` would add, and its one row is the case with its patient and report state, and its images
(each with its capturer) and events aggregated as JSON arrays, in the order the ORM loads them.

What comes back stands in for the ORM objects: plain rows holding the attributes the answer reads, with the same
values (UUIDs excepted: they come back as their text, all the answer makes of them) and the models' derived properties,
so that ``referral_documents`` builds the same answer from either. A case the statement does not find (none such,
another practice's, or one reached only through an emergency grant) is left to the ORM read, which refuses or
flags it exactly as before. The report read (``reports.read``) is done the same way further on, and so are the
image read (``intake.read_image``) and a page of the inbox or sent box (``referrals.list_referrals``) at the end of
this module, where what comes back is the ORM's objects.
"""

from __future__ import annotations

import functools
import itertools
import json
import threading
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.orm import Mapper, Session, joinedload

from referral.db import UTCDateTime
from referral.models import AuditEvent, Image, Patient, Provider, Referral, ReferralEvent
from referral.models.reports import Report, ReportAddendum, ReportStatus
from referral.services import access, audit, pagination
from referral.services.actor import Actor


class _Row:
    """One row's values as attributes, kept in ``__dict__`` (where ``referral_documents`` reads loaded values)."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__ = values


def _stand_in(model: type, *derived: str) -> type[_Row]:
    """A row class for ``model`` that borrows the model's properties computed from its columns, unchanged."""
    return type(f"{model.__name__}Row", (_Row,), {name: vars(model)[name] for name in derived})


class _CaseRow(_stand_in(Referral, "report", "question", "consent")):  # type: ignore[misc]
    """The case, its images read from their JSON text when first asked for (``images_json`` seldom needs them)."""

    @property
    def images(self) -> list[_Row]:
        values = self.__dict__
        if "_images" not in values:
            capturers: dict[str, _Row] = {}
            text = values["images_text"]
            values["_images"] = [_image(row, capturers) for row in (json.loads(text) if text else ())]
        return cast(list[_Row], values["_images"])

    def images_json(self, dumps: Callable[[Any], str], *, keep: int) -> str:
        """The images' JSON array as ``dumps`` writes it of ``referral_documents.image_document`` for each: made of
        the documents written for earlier reads where each image and its capturer are unchanged since
        (``IMAGE_DOCUMENTS``, which keeps at most ``keep``; 0: none), the images' JSON read only when one of them
        is not there. ``dumps`` must always be the same (the one compact JSON of the answers)."""
        from referral.schemas.referral_documents import image_document  # imports this module's callers

        keys = self.__dict__["image_keys"]
        if not keys:
            return "[]"
        if keep <= 0:
            return "[" + ",".join(dumps(image_document(cast(Image, image))) for image in self.images) + "]"
        texts = IMAGE_DOCUMENTS.get_all(keys)
        if texts is None:
            texts = []
            for key, image in zip(keys, self.images, strict=True):
                text = IMAGE_DOCUMENTS.get(key)
                if text is None:
                    text = IMAGE_DOCUMENTS.put(key, dumps(image_document(cast(Image, image))), keep)
                texts.append(text)
        return "[" + ",".join(texts) + "]"


class _Documents:
    """Images' answers as JSON text, by image and version (the image's row and its capturer's, as PostgreSQL's
    ``xmin`` gives them: any change to either makes a new version). Bounded: past the limit ``put`` is given, the
    oldest quarter goes. Kept in the process's memory only, and used only after the statement that found the case
    has checked the actor's access and recorded the read."""

    def __init__(self) -> None:
        self._texts: dict[str, str] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> str | None:
        return self._texts.get(key)

    def get_all(self, keys: Sequence[str]) -> list[str] | None:
        """Every key's text, or None if any is missing."""
        texts = self._texts
        try:
            return [texts[key] for key in keys]
        except KeyError:
            return None

    def put(self, key: str, text: str, limit: int) -> str:
        with self._lock:
            texts = self._texts
            if len(texts) >= limit:
                for oldest in list(itertools.islice(texts, max(1, len(texts) - limit + limit // 4))):
                    del texts[oldest]
            texts[key] = text
        return text


# About 1.5 kB each: a few megabytes per process at the default limit (``Settings.case_image_answers``).
IMAGE_DOCUMENTS = _Documents()
_PatientRow = _stand_in(Patient, "is_deleted", "address")
_ImageRow = _stand_in(Image, "is_deleted", "capture_notes", "has_renditions", "preview_status")
_ProviderRow = _stand_in(Provider, "display_name")

# Timestamps travel in JSON as UTC text with all six digits of microseconds and the offset, whatever the session's
# time zone is, so that ``datetime.fromisoformat`` reads them back as the very values UTCDateTime gives (in UTC).
_UTC_TEXT = 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'


class _Shape:
    """Some mapped columns of a model: how they are selected, and how the values come back as the ORM's."""

    def __init__(self, model: type, keys: Sequence[str] | None = None, *, leave_out: Sequence[str] = (),
                 in_json: bool) -> None:
        mapper: Mapper[Any] = sa.inspect(model)
        attributes = [attr for attr in mapper.column_attrs
                      if (keys is None or attr.key in keys) and attr.key not in leave_out]
        self.keys = [attr.key for attr in attributes]
        columns = [attr.columns[0] for attr in attributes]
        self.selected: list[sa.ColumnElement[Any]] = [
            sa.func.to_char(sa.func.timezone("UTC", column), _UTC_TEXT)
            if in_json and isinstance(column.type, UTCDateTime)
            # A float travels as its text: as a JSON number, -0 would come back as the integer 0.
            else sa.cast(column, sa.Text) if in_json and isinstance(column.type, sa.Float)
            else column
            for column in columns]
        # In JSON, enums come back as their values, timestamps and floats as text; selected as columns, their types
        # read them.
        self.fixes: list[tuple[int, Callable[[Any], Any]]] = []
        if in_json:
            for index, column in enumerate(columns):
                if isinstance(column.type, UTCDateTime):
                    self.fixes.append((index, datetime.fromisoformat))
                elif isinstance(column.type, sa.Float):
                    self.fixes.append((index, float))
                elif isinstance(column.type, sa.Enum) and column.type.enum_class is not None:
                    self.fixes.append((index, column.type.enum_class))

    def values(self, row: Sequence[Any]) -> dict[str, Any]:
        if self.fixes:
            row = list(row)
            for index, fix in self.fixes:
                value = row[index]
                if value is not None:
                    row[index] = fix(value)
        return dict(zip(self.keys, row, strict=True))


_CASE = _Shape(Referral, in_json=False)
# What the case's answer shows of its patient (its summary has no coverage, whoever reads the case).
_PATIENT = _Shape(Patient, ("id", "first_name", "last_name", "birth_date", "sex", "state", "address_line1",
                            "address_line2", "city", "zip", "deleted_at"), in_json=False)
# The answer reads the report's state only; its text stays in the database.
_REPORT = _Shape(Report, ("id", "status", "signed_at"), in_json=False)
# Where an image's bytes are, who uploaded it and when its objects were removed are neither in the answer nor read
# by the properties it uses; leaving them out spares their decoding on every image.
_IMAGE = _Shape(Image, leave_out=("organization_id", "storage_backend", "storage_key", "thumbnail_key",
                                  "sop_instance_uid", "uploaded_by_user_id", "objects_removed_at"), in_json=True)
# What an image's capture notes read of the provider recorded as having taken it.
_CAPTURER = _Shape(Provider, ("id", "first_name", "last_name", "credentials"), in_json=True)
_EVENT = _Shape(ReferralEvent, in_json=True)


# The case's images (each with its capturer) and events as JSON arrays, in the order the ORM loads them; the same
# for every read, correlated to the case of the statement they are put in. The images' JSON comes as text, read
# only if some image's answer is not at hand (``_CaseRow.images_json``), with each image's version: its id, its
# row's xmin and its capturer's (any UPDATE gives a row a new xmin).
_IMAGE_KEY = sa.func.concat_ws(".", Image.id, sa.literal_column("images.xmin"),
                               Provider.id, sa.literal_column("providers.xmin"))
_IMAGES = (sa.select(sa.cast(sa.func.json_agg(aggregate_order_by(
               sa.func.json_build_array(*_IMAGE.selected, *_CAPTURER.selected), Image.id)), sa.Text)
               .label("images_text"),
                     sa.func.array_agg(aggregate_order_by(_IMAGE_KEY, Image.id)).label("image_keys"))
           .select_from(sa.outerjoin(Image, Provider, Provider.id == Image.captured_by_provider_id))
           .where(Image.referral_id == Referral.id)
           .lateral("case_images"))
_EVENTS = (sa.select(sa.func.json_agg(aggregate_order_by(sa.func.json_build_array(*_EVENT.selected),
                                                         ReferralEvent.id)))
           .where(ReferralEvent.referral_id == Referral.id)
           .scalar_subquery())


def _visible_case(assigned: bool) -> sa.CTE:
    """The case asked for (``referral_id``) if the actor sees it through their practice or, ``assigned``, their
    provider's assignment (``organization_id``, ``provider_id``)."""
    return (sa.select(Referral.id, Referral.organization_id, Referral.assigned_provider_id)
            .where(Referral.id == sa.bindparam("referral_id", type_=sa.Uuid),
                   access.visibility_rule(assigned, sa.bindparam("organization_id", type_=sa.Uuid),
                                          sa.bindparam("provider_id", type_=sa.Uuid)))
            .cte("visible_case"))


def _parameters(session: Session, actor: Actor, referral_id: uuid.UUID, action: str, object_type: str,
                object_id: uuid.UUID | None) -> dict[str, Any]:
    return {"referral_id": referral_id, "organization_id": actor.organization_id, "provider_id": actor.provider_id,
            **audit.insert_parameters(session, actor, action, object_type=object_type, object_id=object_id,
                                      referral_id=referral_id)}


@functools.cache
def _statement(assigned: bool) -> sa.Select[Any]:
    """The read for actors who see their practice's cases (and, ``assigned``, those assigned to their provider),
    built once: its cache key and compiled form are then reused by every read."""
    visible = _visible_case(assigned)
    audited = audit.insert_for_each(visible, organization_id=visible.c.organization_id).cte("audited")
    return (sa.select(*_CASE.selected, *_PATIENT.selected, *_REPORT.selected, _IMAGES.c.images_text,
                      _IMAGES.c.image_keys, _EVENTS)
            .select_from(visible)
            .join(Referral, Referral.id == visible.c.id)
            .join(Patient, Patient.id == Referral.patient_id)
            .outerjoin(Report, Report.referral_id == Referral.id)
            .join(_IMAGES, sa.true())
            .add_cte(audited))


def _image(values: Sequence[Any], capturers: dict[str, _Row]) -> _Row:
    """An image row with its capturer, one row per provider however many images they took (as the ORM's identity
    map gives one object)."""
    width = len(_IMAGE.keys)
    image = _IMAGE.values(values[:width])
    capturer_id = values[width]
    capturer = capturers.get(capturer_id) if capturer_id is not None else None
    if capturer is None and capturer_id is not None:
        capturer = capturers[capturer_id] = _ProviderRow(_CAPTURER.values(values[width:]))
    image["captured_by"] = capturer
    return _ImageRow(image)


def read_visible_case(session: Session, actor: Actor, referral_id: uuid.UUID) -> Referral | None:
    """The case with what its answer needs, when the actor sees it through their practice or their assignment,
    its read audited in the same statement; ``None`` (and nothing recorded) otherwise. The role is checked first,
    as ``access.load_case`` checks it. The caller commits."""
    access.require_role(actor, *access.CLINICAL_READ_ROLES)
    parameters = _parameters(session, actor, referral_id, "referral.read", "referral", referral_id)
    row = session.execute(_statement(access.reads_assigned(actor)), parameters).one_or_none()
    if row is None:
        return None
    at = 0
    parts: list[Sequence[Any]] = []
    for shape in (_CASE, _PATIENT, _REPORT):
        parts.append(row[at:at + len(shape.keys)])
        at += len(shape.keys)
    images_text, image_keys, events = row[at], row[at + 1], row[at + 2]
    case = _CASE.values(parts[0])
    report = _REPORT.values(parts[2])
    case["patient"] = _PatientRow(_PATIENT.values(parts[1]))
    case["interpretation"] = None if report["id"] is None else _Row(report)
    # the images themselves are read from their JSON text when asked for (``_CaseRow``)
    case["images_text"], case["image_keys"] = images_text, image_keys or []
    case["events"] = [_Row(_EVENT.values(values)) for values in events or ()]
    # Read by attribute only, as the answer's builder reads a loaded Referral.
    return cast(Referral, _CaseRow(case))


# The report read (``reports.read``): the report with its addenda, for a case the actor sees.
_REPORT_READ = _Shape(Report, in_json=False)
_ADDENDUM = _Shape(ReportAddendum, in_json=True)
_ADDENDA = (sa.select(sa.func.json_agg(aggregate_order_by(sa.func.json_build_array(*_ADDENDUM.selected),
                                                          ReportAddendum.id)))
            .where(ReportAddendum.report_id == Report.id)
            .scalar_subquery())


@functools.cache
def _report_statement(assigned: bool) -> sa.Select[Any]:
    """The report of a case the actor sees, unless it is a draft and the actor is not the case's reader (the
    provider it is assigned to), with its audit row; built once as ``_statement`` is."""
    visible = _visible_case(assigned)
    readable = (sa.select(Report.id, visible.c.id.label("referral_id"), visible.c.organization_id)
                .select_from(visible)
                .join(Report, Report.referral_id == visible.c.id)
                .where(sa.or_(Report.status != ReportStatus.DRAFT,
                              visible.c.assigned_provider_id == sa.bindparam("provider_id", type_=sa.Uuid)))
                .cte("readable_report"))
    audited = audit.insert_for_each(readable, organization_id=readable.c.organization_id,
                                    object_id=readable.c.id).cte("audited")
    return (sa.select(*_REPORT_READ.selected, _ADDENDA)
            .select_from(readable)
            .join(Report, Report.id == readable.c.id)
            .add_cte(audited))


def read_visible_report(session: Session, actor: Actor, referral_id: uuid.UUID) -> Report | None:
    """The case's report with its addenda, when the actor sees the case through their practice or their assignment
    and the report is signed or theirs to draft, its read audited in the same statement; ``None`` (and nothing
    recorded) otherwise. The role is checked first, as ``access.load_case`` checks it. The caller commits."""
    access.require_role(actor, *access.CLINICAL_READ_ROLES)
    # the row's object is the report, whose id the statement finds
    parameters = _parameters(session, actor, referral_id, "report.read", "report", None)
    row = session.execute(_report_statement(access.reads_assigned(actor)), parameters).one_or_none()
    if row is None:
        return None
    report = _REPORT_READ.values(row[:-1])
    report["addenda"] = [_Row(_ADDENDUM.values(values)) for values in row[-1] or ()]
    # Read by attribute only, as ReportSchema reads a loaded Report.
    return cast(Report, _Row(report))


# The image read (``intake.read_image``): one image's metadata with who captured it, its case's access rule and the
# audit row in one statement. The image comes back as the ORM's object (one row, so there is little to spare).
@functools.cache
def _image_statement(assigned: bool) -> sa.Select[Any]:
    visible = (sa.select(Image.id, Image.organization_id, Image.referral_id)
               .join(Referral, Referral.id == Image.referral_id)
               .where(Image.id == sa.bindparam("image_id", type_=sa.Uuid),
                      access.visibility_rule(assigned, sa.bindparam("organization_id", type_=sa.Uuid),
                                             sa.bindparam("provider_id", type_=sa.Uuid)))
               .cte("visible_image"))
    audited = audit.insert_for_each(visible, organization_id=visible.c.organization_id,
                                    object_id=visible.c.id, referral_id=visible.c.referral_id).cte("audited")
    return (sa.select(Image).join(visible, visible.c.id == Image.id)
            .options(joinedload(Image.captured_by))
            .add_cte(audited))


def read_visible_image(session: Session, actor: Actor, image_id: uuid.UUID) -> Image | None:
    """The image with its capturer when the actor sees its case through their practice or their assignment, its
    read audited in the same statement; ``None`` (and nothing recorded) otherwise, including for a role that reads
    no cases. The caller commits."""
    if actor.role not in access.CLINICAL_READ_ROLES:
        return None
    # the row's case and object are the image's, which the statement finds
    parameters = {"image_id": image_id, "organization_id": actor.organization_id, "provider_id": actor.provider_id,
                  **audit.insert_parameters(session, actor, "image.read", object_type="image", object_id=None)}
    return session.scalars(_image_statement(access.reads_assigned(actor)), parameters).unique().one_or_none()


# The inbox or sent box (``referrals.list_referrals``): a page of cases and the audit row of its reading, which
# records how many the page holds, in one statement.
_ORDER = (Referral.due_at, Referral.id)


def _page_statement(listing: sa.Select[Any], after: bool) -> sa.Select[Any]:
    """The page of ``listing`` (``pagination.keyset``) with the row ``audit.record`` adds for ``referral.list``; the
    details' JSON text is the bound ``details_head``, the page's count and ``details_tail``."""
    bounded = pagination.keyset(listing, _ORDER, after=after)
    listed = bounded.with_only_columns(Referral.id).cte("listed")
    counted = (sa.select(sa.func.least(sa.func.count(), sa.bindparam("page_size", type_=sa.Integer)).label("count"))
               .select_from(listed).subquery("counted"))
    text = (sa.bindparam("details_head", type_=sa.Text) + sa.cast(counted.c.count, sa.Text)
            + sa.bindparam("details_tail", type_=sa.Text))
    audited = audit.insert_for_each(
        counted, organization_id=sa.bindparam("organization_id", type_=sa.Uuid),
        details=sa.cast(text, AuditEvent.__table__.c.details.type)).cte("audited")
    return (sa.select(Referral).join(listed, listed.c.id == Referral.id)
            .order_by(*pagination.ordering(_ORDER)).add_cte(audited))


# Built once for each listing ``referrals._listing`` builds once (searches build theirs every time).
_reused_page_statement = functools.cache(_page_statement)
_COUNT = "__count__"


def read_page(session: Session, actor: Actor, listing: sa.Select[Any], parameters: dict[str, Any],
              cursor: str | None, limit: int | None, details: dict[str, Any], *,
              reuse: bool) -> tuple[list[Referral], str | None]:
    """``pagination.page`` of ``listing`` (cases, by response deadline then id; ``parameters`` binds its values)
    with the row ``audit.record`` adds for ``referral.list``, its ``details`` completed with the page's count,
    inserted by the same statement. ``reuse``: ``listing`` is built once and so is this statement. The caller
    commits."""
    paging, size = pagination.keyset_parameters(_ORDER, cursor, limit)
    # The details' JSON text as the ORM writes it (the same serializer), the count put in by the statement.
    head, tail = json.dumps({"count": _COUNT, **details}).split(json.dumps(_COUNT), 1)
    statement = (_reused_page_statement if reuse else _page_statement)(listing, bool(cursor))
    rows = session.scalars(statement, {
        **parameters, **paging, "page_size": size, "details_head": head, "details_tail": tail,
        "organization_id": actor.organization_id,
        **audit.insert_parameters(session, actor, "referral.list", object_type="referral", object_id=None)})
    return pagination.page_of(list(rows), _ORDER, size)
