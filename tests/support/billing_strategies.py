"""Hypothesis strategies for the claims engine: random images and visits over both practices."""

from __future__ import annotations

from datetime import UTC, date, datetime

from hypothesis import strategies as st

from referral.billing.engine import KINDS
from referral.billing.model import ImageFacts, PriorLine, VisitFacts
from tests.support.billing import ALDER, BIRCH, ENDODONTIST, REMOTE_DENTIST, visit

DAYS = [date(2017, 12, 1), date(2020, 12, 31), date(2021, 1, 1), date(2022, 12, 31), date(2025, 3, 10)]


TEETH = ["3", "14", "19", "29", "30", "A", "51"]


ORG_IDS = [ALDER.id, ALDER.id, ALDER.id, BIRCH.id, "org-third"]


@st.composite
def images(draw: st.DrawFn) -> tuple[ImageFacts, ...]:
    made: list[ImageFacts] = []
    for index in range(draw(st.integers(0, 9))):
        earlier = [image.id for image in made]
        retake_of = draw(st.one_of(st.none(), st.sampled_from([*earlier, "ghost"]))) if draw(st.booleans()) else None
        made.append(
            ImageFacts(
                id=f"img-{index}",
                kind=draw(st.sampled_from([*sorted(KINDS), "complete_series", "periapical", "bitewing"])),
                captured_on=draw(st.sampled_from(DAYS)),
                capturing_organization_id=draw(st.sampled_from(ORG_IDS)),
                capturing_provider_id="prov-hygienist",
                teeth=tuple(draw(st.lists(st.sampled_from(TEETH), max_size=3, unique=True))),
                area=draw(st.sampled_from([None, None, "00", "10", "40"])),
                retake_of=retake_of,
                nondiagnostic=draw(st.booleans()) and draw(st.booleans()),
                series_id=draw(st.sampled_from([None, None, "fmx-1", "fmx-2"])),
            )
        )
    return tuple(made)


@st.composite
def visits(draw: st.DrawFn) -> VisitFacts:
    # No reader yet, a dentist of the capturing practice, or another practice's specialist.
    reader, reader_org = draw(st.sampled_from([(None, None), (REMOTE_DENTIST, ALDER), (ENDODONTIST, BIRCH)]))
    signed_on = draw(st.one_of(st.none(), st.sampled_from(DAYS)))
    prior = draw(
        st.lists(
            st.builds(
                PriorLine,
                code=st.sampled_from(["D0210", "D0220", "D0230", "D0330", "D0707", "D9996", "D0274"]),
                date_of_service=st.sampled_from(DAYS),
                billing_organization_id=st.sampled_from([ALDER.id, BIRCH.id, None]),
                quantity=st.integers(1, 3),
            ),
            max_size=4,
        )
    )
    return visit(
        *draw(images()),
        reader=reader,
        reader_org=reader_org,
        signed_at=datetime(signed_on.year, signed_on.month, signed_on.day, 12, tzinfo=UTC) if signed_on else None,
        mode=draw(st.sampled_from(["asynchronous", "synchronous"])),
        place_of_service=draw(st.sampled_from(["11", "03", "12"])),
        evaluation=draw(st.booleans()),
        office_read=draw(st.booleans()),
        office_evaluation=draw(st.booleans()),
        prior=tuple(prior),
    )
