"""A referral exported in another standard's shape. An export is a read of the whole case, so it is scoped
and audited like one."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.orm import Session

from referral.fhir import referral_bundle
from referral.services import access, audit
from referral.services.actor import Actor


def fhir_bundle(session: Session, actor: Actor, referral_id: uuid.UUID, base_url: str) -> dict[str, Any]:
    """The referral as a FHIR R4 collection Bundle, for the referring practice and the assigned reader; its
    entries' fullUrls are their addresses on the read API at ``base_url``."""
    referral = access.get_referral(session, actor, referral_id)
    bundle = referral_bundle(session, referral, base_url=base_url,
                             with_coverage=access.sees_patient_coverage(actor, referral))
    audit.record(session, actor, "referral.fhir_export", object_type="referral", object_id=referral.id,
                 organization_id=referral.organization_id, referral_id=referral.id,
                 details={"format": "fhir-r4", "resources": len(bundle["entry"])})
    session.commit()
    return bundle
