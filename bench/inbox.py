"""Inbox at scale: a reader's inbox (first page and a deep page) with 10,000 referrals in PostgreSQL, and again
after the table has grown to 1,000,000 (100,000 with --quick), spread over many practices and readers.

Rows are generated with set-based SQL (INSERT ... SELECT over generate_series) into a database migrated by the
project's migrations, so every NOT NULL column, CHECK constraint, foreign key and index is the production one.
The timed call is the service behind ``GET /api/v1/referrals?view=inbox`` (``list_referrals``: keyset page,
audit row, commit) followed by the page's schema dump, on a new session each time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import psycopg

from bench.common import BenchError, heading, line, median
from bench.context import Run
from bench.servers import fresh_database
from referral.db import make_engine, make_session_factory
from referral.models.enums import Role
from referral.schemas.referrals import ReferralPageSchema
from referral.services.actor import Actor
from referral.services.pagination import encode_cursor
from referral.services.referrals import list_referrals

CAPTURING_PRACTICES = 200
PATIENTS_PER_PRACTICE = 500
READER_PRACTICES = 20
READERS = 100
SMALL = 10_000
LARGE = 1_000_000
LARGE_QUICK = 100_000
PAGE = 25
DEEP_FRACTION = 0.8

_SETUP = """
CREATE TABLE bench_practices (n int PRIMARY KEY, org_id uuid NOT NULL, dentist_id uuid NOT NULL,
                              staff_user_id uuid NOT NULL);
CREATE TABLE bench_readers (n int PRIMARY KEY, org_id uuid NOT NULL, provider_id uuid NOT NULL,
                            user_id uuid NOT NULL, specialty text NOT NULL);
CREATE TABLE bench_patients (practice int, k int, patient_id uuid NOT NULL, PRIMARY KEY (practice, k));

INSERT INTO bench_practices
SELECT n, gen_random_uuid(), gen_random_uuid(), gen_random_uuid() FROM generate_series(0, %(practices)s - 1) n;
INSERT INTO bench_readers
SELECT n, gen_random_uuid(), gen_random_uuid(), gen_random_uuid(),
       (ARRAY['endodontics', 'oral_surgery', 'periodontics', 'oral_radiology'])[1 + n %% 4]
FROM generate_series(0, %(readers)s - 1) n;
-- readers work in READER_PRACTICES practices: the first reader of each practice names it
UPDATE bench_readers r SET org_id = f.org_id
FROM (SELECT n, org_id FROM bench_readers WHERE n < %(reader_practices)s) f
WHERE f.n = r.n %% %(reader_practices)s;

INSERT INTO organizations (id, name, npi, tax_id, address_line1, city, state, zip,
                           requires_teledentistry_consent, created_at)
SELECT org_id, 'Practice ' || n, lpad((1000000000 + n)::text, 10, '0'), '123456789', n || ' Main St',
       'Sacramento', 'CA', '95814', true, now()
FROM bench_practices
UNION ALL
SELECT org_id, 'Readers ' || n, lpad((1500000000 + n)::text, 10, '0'), '987654321', n || ' Oak Ave',
       'Fresno', 'CA', '93650', true, now()
FROM bench_readers WHERE n < %(reader_practices)s;

INSERT INTO providers (id, organization_id, first_name, last_name, credentials, npi, taxonomy, specialty,
                       license_states, accepting_referrals, created_at)
SELECT dentist_id, org_id, 'Dana', 'Dentist' || n, 'DDS', lpad((1100000000 + n)::text, 10, '0'), '1223G0001X',
       'general', '["CA"]'::json, true, now()
FROM bench_practices
UNION ALL
SELECT provider_id, org_id, 'Rory', 'Reader' || n, 'DDS, MS', lpad((1200000000 + n)::text, 10, '0'),
       '1223E0200X', specialty, '["CA"]'::json, true, now()
FROM bench_readers;

INSERT INTO users (id, organization_id, email, role, provider_id, active, created_at)
SELECT staff_user_id, org_id, 'staff' || n || '@practice.example.com', 'staff', NULL, true, now()
FROM bench_practices
UNION ALL
SELECT user_id, org_id, 'reader' || n || '@readers.example.com', 'specialist', provider_id, true, now()
FROM bench_readers;

INSERT INTO bench_patients
SELECT p.n, k, gen_random_uuid()
FROM bench_practices p CROSS JOIN generate_series(0, %(patients)s - 1) k;

INSERT INTO patients (id, organization_id, first_name, last_name, birth_date, sex, state, coverage_payer_id,
                      coverage_payer_name, coverage_member_id, created_by_user_id, created_at)
SELECT bp.patient_id, p.org_id, 'Pat' || bp.k, 'Patient' || bp.practice, date '1950-01-01' + (bp.k * 37) %% 25000,
       (ARRAY['F', 'M', 'U'])[1 + bp.k %% 3], 'CA', '60054', 'Example Dental Plan', 'M' || bp.k,
       p.staff_user_id, now()
FROM bench_patients bp JOIN bench_practices p ON p.n = bp.practice;
"""

# Row g of the referrals table. Deadlines are spread over three years in an order unrelated to g, so rows
# added later land all over the index; ids are time-ordered like the application's (48 bits of creation
# milliseconds, version 7), one in twenty cases is an unassigned draft, the rest are spread over READERS.
_REFERRALS = """
INSERT INTO referrals (id, organization_id, patient_id, referring_provider_id, specialty, reason, teeth, urgency,
                       due_at, mode, scope, place_of_service, target_provider_id, assigned_provider_id, status,
                       submitted_at, accepted_at, created_by_user_id, created_at, updated_at)
SELECT (lpad(to_hex((extract(epoch FROM g.created_at) * 1000)::bigint), 12, '0') || '7'
        || substr(md5(g.n::text), 1, 3) || '8' || substr(md5(g.n::text || 'x'), 1, 15))::uuid,
       p.org_id, bp.patient_id, p.dentist_id,
       coalesce(r.specialty, 'endodontics'),
       'Bench case ' || g.n, '["19"]'::json,
       (ARRAY['routine', 'urgent', 'emergency'])[1 + g.n %% 3],
       g.created_at + interval '1 day' * (ARRAY[7, 1, 0.17])[1 + g.n %% 3],
       'asynchronous', 'evaluate_only', '11', NULL, r.provider_id,
       CASE WHEN r.provider_id IS NULL THEN 'draft'
            ELSE (ARRAY['closed', 'closed', 'closed', 'closed', 'closed', 'closed', 'reported', 'reported',
                        'accepted', 'routed', 'retake_requested', 'cancelled'])[1 + (g.n / 7) %% 12] END,
       CASE WHEN r.provider_id IS NULL THEN NULL ELSE g.created_at + interval '10 minutes' END,
       NULL, p.staff_user_id, g.created_at, g.created_at
FROM (SELECT n, timestamptz '2023-01-01 00:00:00+00' + ((n::bigint * 7919) %% 94608000) * interval '1 second'
             AS created_at
      FROM generate_series(%(first)s, %(last)s) n) g
JOIN bench_practices p ON p.n = g.n %% %(practices)s
JOIN bench_patients bp ON bp.practice = p.n AND bp.k = (g.n / %(practices)s) %% %(patients)s
LEFT JOIN bench_readers r ON g.n %% 20 <> 0 AND r.n = (g.n * 37 + g.n / 1000) %% %(readers)s
"""


def _psycopg_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def _parameters(**extra: int) -> dict[str, int]:
    return {"practices": CAPTURING_PRACTICES, "readers": READERS, "reader_practices": READER_PRACTICES,
            "patients": PATIENTS_PER_PRACTICE, **extra}


def _add_referrals(url: str, first: int, last: int) -> float:
    started = time.perf_counter()
    with psycopg.connect(_psycopg_url(url), autocommit=True) as connection:
        psycopg.ClientCursor(connection).execute(_REFERRALS, _parameters(first=first, last=last))
        connection.execute("ANALYZE")
    return time.perf_counter() - started


def _reader(url: str) -> tuple[Actor, int]:
    with psycopg.connect(_psycopg_url(url)) as connection:
        row = connection.execute(
            "SELECT r.user_id, r.org_id, r.provider_id, count(*) FROM bench_readers r "
            "JOIN referrals f ON f.assigned_provider_id = r.provider_id WHERE r.n = 0 "
            "GROUP BY r.user_id, r.org_id, r.provider_id").fetchone()
    if row is None:
        raise BenchError("the measured reader has no referrals")
    actor = Actor(user_id=row[0], organization_id=row[1], role=Role.SPECIALIST, provider_id=row[2],
                  ip_address="127.0.0.1", user_agent="bench")
    return actor, int(row[3])


def _deep_position(inbox: int) -> int:
    """Where the deep page starts: four fifths into the inbox, with a full page after it."""
    return max(0, min(int(inbox * DEEP_FRACTION), inbox - 2 * PAGE))


def _deep_cursor(url: str, actor: Actor, position: int) -> str:
    with psycopg.connect(_psycopg_url(url)) as connection:
        row = connection.execute(
            "SELECT due_at, id FROM referrals WHERE assigned_provider_id = %s ORDER BY due_at, id "
            "OFFSET %s LIMIT 1", (actor.provider_id, position)).fetchone()
    if row is None:
        raise BenchError("the deep page lies past the reader's inbox")
    return encode_cursor([row[0], row[1]])


def _plan(url: str, actor: Actor) -> str:
    with psycopg.connect(_psycopg_url(url)) as connection:
        rows = connection.execute(
            "EXPLAIN SELECT * FROM referrals WHERE assigned_provider_id = %s ORDER BY due_at, id LIMIT 26",
            (actor.provider_id,)).fetchall()
    return " / ".join(str(row[0]).strip() for row in rows[:2])


@dataclass
class _Table:
    """One database of the comparison, and the reader measured in it."""

    url: str
    rows: int
    load_seconds: float = 0.0
    inbox: int = 0
    deep_position: int = 0
    actor: Actor | None = None
    cursor: str = ""
    first: list[float] = field(default_factory=list)
    deep: list[float] = field(default_factory=list)


class _Pager:
    def __init__(self, table: _Table) -> None:
        self.table = table
        self.engine = make_engine(table.url)
        self.factory = make_session_factory(self.engine)
        self.schema = ReferralPageSchema()

    def page(self, cursor: str | None) -> float:
        """One inbox page as the API makes it: the service (keyset query, audit row, commit), then the dump."""
        actor = self.table.actor
        if actor is None:
            raise BenchError("no reader to measure")
        started = time.perf_counter()
        with self.factory() as session:
            items, next_cursor = list_referrals(session, actor, view="inbox", cursor=cursor,
                                                limit=PAGE)
            document = self.schema.dump({"items": items, "next_cursor": next_cursor})
        elapsed = time.perf_counter() - started
        if len(document["items"]) != PAGE or document["next_cursor"] is None:
            raise BenchError(f"expected a full page of {PAGE} with a next one, got {len(document['items'])}")
        return elapsed * 1000

    def close(self) -> None:
        self.engine.dispose()


def _time_alternately(tables: list[_Table], repetitions: int) -> None:
    """Both databases are measured turn about, so that whatever else the machine does meanwhile weighs on
    each alike."""
    pagers = [_Pager(table) for table in tables]
    try:
        for _ in range(10):  # warm the connection pools, statement caches and buffer caches
            for pager in pagers:
                pager.page(None)
                pager.page(pager.table.cursor)
        for _ in range(repetitions):
            for pager in pagers:
                pager.table.first.append(pager.page(None))
                pager.table.deep.append(pager.page(pager.table.cursor))
    finally:
        for pager in pagers:
            pager.close()


def _count(url: str) -> int:
    with psycopg.connect(_psycopg_url(url)) as connection:
        row = connection.execute("SELECT count(*) FROM referrals").fetchone()
    return int(row[0]) if row else 0


def _prepare(table: _Table) -> None:
    with psycopg.connect(_psycopg_url(table.url), autocommit=True) as connection:
        # several statements in one call: parameters bound on the client
        psycopg.ClientCursor(connection).execute(_SETUP, _parameters())
    table.load_seconds = _add_referrals(table.url, 0, table.rows - 1)
    if _count(table.url) != table.rows:
        raise BenchError("the referrals table does not hold the rows generated")
    table.actor, table.inbox = _reader(table.url)
    table.deep_position = _deep_position(table.inbox)
    table.cursor = _deep_cursor(table.url, table.actor, table.deep_position)


def run(run: Run) -> None:
    large_rows = LARGE_QUICK if run.quick else LARGE
    heading(f"4. Inbox at {SMALL:,} and {large_rows:,} referrals")
    if run.quick:
        line("quick run", f"{large_rows:,} referrals stand in for 1,000,000")
    repetitions = 100 if run.quick else 300
    line("practices / readers / patients",
         f"{CAPTURING_PRACTICES} + {READER_PRACTICES} / {READERS} / {CAPTURING_PRACTICES * PATIENTS_PER_PRACTICE:,}")
    line("page", f"{PAGE} cases; median of {repetitions} after 10 warm-up rounds")
    with fresh_database("inbox_small") as small_url, fresh_database("inbox_large") as large_url:
        small, large = _Table(small_url, SMALL), _Table(large_url, large_rows)
        for table in (small, large):
            _prepare(table)
            line(f"{table.rows:,} referrals generated in", table.load_seconds, "s")
        _time_alternately([small, large], repetitions)
        plan = _plan(large.url, large.actor) if large.actor else ""
    for table in (small, large):
        line(f"{table.rows:,} referrals: reader's inbox", f"{table.inbox:,} cases")
        line("   first page", median(table.first), "ms (median)")
        line(f"   deep page (from case {table.deep_position:,})", median(table.deep), "ms (median)")
    line("plan of the inbox query", plan)
    first_ratio = median(large.first) / median(small.first)
    deep_ratio = median(large.deep) / median(small.deep)
    run.record(
        inbox_small_rows=SMALL,
        inbox_large_rows=large_rows,
        inbox_load_rows_per_s=round(large_rows / large.load_seconds),
        inbox_10k_reader_cases=small.inbox,
        inbox_1m_reader_cases=large.inbox,
        inbox_10k_first_page_ms=round(median(small.first), 2),
        inbox_10k_deep_page_ms=round(median(small.deep), 2),
        inbox_1m_first_page_ms=round(median(large.first), 2),
        inbox_1m_deep_page_ms=round(median(large.deep), 2),
        inbox_first_page_ratio=round(first_ratio, 3),
        inbox_deep_page_ratio=round(deep_ratio, 3),
        # the worse of the two pages
        inbox_1m_vs_10k_latency_ratio=round(max(first_ratio, deep_ratio), 3),
        inbox_plan=plan,
    )
    line("first page, large / small", first_ratio)
    line("deep page, large / small", deep_ratio)
    run.target("inbox_1m_vs_10k_latency_ratio", "<=", 1.5)
