"""The claim life cycle: which status may follow which, and the event row every change leaves.

hold -> ready -> submitted (exported) -> accepted / rejected (acknowledgement) -> paid / partially_paid /
denied (remittance) -> appealed / corrected -> closed. Helpers here add to the caller's transaction and never
commit.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from referral.db import utcnow
from referral.errors import Conflict
from referral.models import Claim, ClaimEvent, User
from referral.services.actor import Actor

PAYMENT_RESULTS = frozenset({"paid", "partially_paid", "denied"})
# Statuses in which the claim has left the practice: its lines are what the payer has and are not rewritten.
SENT = frozenset({"submitted", "accepted", "rejected", "paid", "partially_paid", "denied", "appealed",
                  "corrected", "closed"})
# A rejected claim never reached adjudication: it is fixed and sent again as a new original, so new facts
# may rewrite it like one not yet sent.
REWRITABLE = frozenset({"hold", "ready", "rejected"})
# Billing may write the narrative until the claim is sent, and again for a corrected claim.
NARRATIVE_EDITABLE = REWRITABLE | {"corrected"}

ALLOWED: dict[str | None, frozenset[str]] = {
    None: frozenset({"hold", "ready"}),
    "hold": frozenset({"ready"}),
    "ready": frozenset({"hold", "submitted"}),
    "submitted": frozenset({"accepted", "rejected"}) | PAYMENT_RESULTS,
    "accepted": frozenset({"rejected"}) | PAYMENT_RESULTS,
    "rejected": frozenset({"hold", "ready", "submitted", "accepted"}),
    "paid": frozenset({"partially_paid", "denied", "appealed", "corrected", "closed"}),
    "partially_paid": frozenset({"paid", "denied", "appealed", "corrected", "closed"}),
    "denied": frozenset({"paid", "partially_paid", "appealed", "corrected", "closed"}),
    "appealed": PAYMENT_RESULTS | frozenset({"corrected", "closed"}),
    "corrected": frozenset({"submitted", "accepted", "rejected", "closed"}) | PAYMENT_RESULTS,
    "closed": frozenset(),
}

STATUS_WORDS = {
    "hold": "on hold", "ready": "ready to send", "submitted": "sent to the payer", "accepted": "accepted by the payer",
    "rejected": "rejected by the payer", "paid": "paid", "partially_paid": "partly paid", "denied": "denied",
    "appealed": "appealed", "corrected": "corrected", "closed": "closed",
}


def actor_label(session: Session, actor: Actor) -> str:
    if actor.user_id is None:
        return "the system"
    user = session.get(User, actor.user_id)
    return user.email if user is not None else "a former user"


def may_change(claim: Claim | None, to_status: str) -> bool:
    current = claim.status if claim is not None else None
    return to_status in ALLOWED.get(current, frozenset())


def _event(session: Session, actor: Actor, claim: Claim, from_status: str | None, to_status: str,
           note: str) -> ClaimEvent:
    event = ClaimEvent(sequence=len(claim.events) + 1, from_status=from_status, to_status=to_status,
                       actor_user_id=actor.user_id, actor_label=actor_label(session, actor), note=note,
                       created_at=utcnow())
    claim.events.append(event)
    return event


def change_status(session: Session, actor: Actor, claim: Claim, to_status: str, note: str = "", *,
                  force: bool = False) -> ClaimEvent:
    """Move ``claim`` to ``to_status`` and record the event. A move the life cycle does not allow is refused
    with 409, unless ``force`` (a payer's reversal puts back what it undoes)."""
    from_status = claim.status
    if not force and to_status not in ALLOWED.get(from_status, frozenset()):
        raise Conflict(f"A claim that is {STATUS_WORDS.get(from_status, from_status)} cannot become "
                       f"{STATUS_WORDS.get(to_status, to_status)}")
    claim.status = to_status
    claim.updated_at = utcnow()
    return _event(session, actor, claim, from_status, to_status, note)


def first_status(session: Session, actor: Actor, claim: Claim, status: str, note: str) -> ClaimEvent:
    """The event of a claim's first status (its creation)."""
    claim.status = status
    return _event(session, actor, claim, None, status, note)


def note(session: Session, actor: Actor, claim: Claim, text: str) -> ClaimEvent:
    """An event that records something about the claim while its status stays the same."""
    return _event(session, actor, claim, claim.status, claim.status, text)
