"""Posts' texts read on another core (`policies.readers`): what the other process reads is
what this one would, by the rule set the batch was given, however many rule sets come and
go; a small batch never leaves; a process that dies (busy or idle), hangs or loses its
parent costs a batch nothing, never holds its caller up and leaves nothing running; and a
batch the ingest stores is triaged as if read in place, on both databases."""

from __future__ import annotations

import itertools
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from policies import readers, triage
from policies.engine import RuleSet
from policies.readers import Readers
from policies.versions import RuleBook
from records import ingest
from records.db import Database
from records.post_models import PostCreate
from records.tables import POSTS
from tests.test_triage_corpus import rows

SHIPPED = RuleSet.load()
TEXTS = [row["text"] for row in rows()]


def shipped_with(languages: str) -> RuleSet:
    """The shipped rule set, listening for `languages` only (e.g. "en, de")."""
    listed = "  languages: [en, es, fr, de, pt, it, nl]"
    assert listed in SHIPPED.source
    return RuleSet(SHIPPED.source.replace(listed, f"  languages: [{languages}]"))


# Fewer languages and a topic of its own in front.
NARROWER = RuleSet(
    shipped_with("en, de").source.replace(
        "  topics:                    # the first topic listed whose terms the post holds wins\n",
        "  topics:                    # the first topic listed whose terms the post holds wins\n"
        "    - topic: waiting\n      terms: [waiting, still]\n",
    )
)


@pytest.fixture
def reading(monkeypatch: pytest.MonkeyPatch) -> Iterator[Readers]:
    monkeypatch.setattr(readers, "RESTART_SECONDS", 0.0)  # a failed process is replaced at once
    made = Readers(min_batch=1)
    yield made
    made.stop()


@dataclass(frozen=True)
class Read:
    """A reading to compare: lingua adds its scores in the order of a hash map seeded per
    process, so two processes' confidence in a language differ in their last bits
    (0.997514871982474 against 0.9975148719824738); they agree to twelve digits."""

    reading: triage.Reading

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Read):
            return NotImplemented
        mine, theirs = self.reading, other.reading
        return (mine.words, mine.language, mine.sentiment) == (
            theirs.words, theirs.language, theirs.sentiment
        ) and math.isclose(mine.confidence, theirs.confidence, rel_tol=1e-12)  # fmt: skip


def read_as(readings: Iterable[triage.Reading]) -> list[Read]:
    return [Read(reading) for reading in readings]


def here(rules: triage.Rules, texts: list[str]) -> list[Read]:
    return read_as(triage.read_text(rules, text) for text in texts)


def gone(pid: int, within: float = 10.0, *, waited: bool = True) -> bool:
    """Whether process `pid` has ended and been waited for within `within` seconds;
    `waited=False`: or has ended, a zombie its parent (or adopter) has yet to wait for."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except FileNotFoundError:
            return True
        if not waited and stat.rpartition(")")[2].split()[0] == "Z":
            return True
        time.sleep(0.05)
    return False


def test_the_other_process_reads_each_batch_by_the_rules_it_came_with(reading: Readers) -> None:
    assert NARROWER.triage.languages != SHIPPED.triage.languages
    half = len(TEXTS) // 2
    # Two rule sets in turn: each goes over once, and each batch is read by its own.
    for rules, texts in (
        (SHIPPED.triage, TEXTS[:half]), (NARROWER.triage, TEXTS[:half]),
        (SHIPPED.triage, TEXTS[half:]), (NARROWER.triage, TEXTS[half:]),
    ):  # fmt: skip
        pending = reading.start(rules, texts)
        assert read_as(pending.result()) == here(rules, texts)
        assert pending.read_there
    # The two rule sets read differently, so a mix-up would have shown.
    assert here(SHIPPED.triage, TEXTS) != here(NARROWER.triage, TEXTS)


def test_more_rule_sets_than_it_keeps_are_each_read_by_their_own(reading: Readers) -> None:
    """Six rule sets, twice round, each keeping its number: the process keeps the latest
    four, so the first ones are sent again when they come back; a batch is never read by
    another's."""
    sets = [shipped_with(f"en, {other}").triage for other in ("es", "fr", "de", "pt", "it", "nl")]
    assert readers.KEPT_RULE_SETS < len(sets) <= readers.NUMBERED_RULE_SETS
    for rules in sets + sets:
        pending = reading.start(rules, TEXTS[:60])
        assert read_as(pending.result()) == here(rules, TEXTS[:60])
        assert pending.read_there
    readings = [here(rules, TEXTS[:60]) for rules in sets]
    assert all(a != b for a, b in itertools.combinations(readings, 2))  # a mix-up would show


def test_a_small_batch_is_read_here() -> None:
    few = Readers(min_batch=16)
    pending = few.start(SHIPPED.triage, TEXTS[:15])
    assert few.pid() is None  # nothing was started
    assert read_as(pending.result()) == here(SHIPPED.triage, TEXTS[:15])
    assert pending.read_there is False


def test_a_process_killed_while_reading_costs_its_batch_nothing(reading: Readers) -> None:
    assert read_as(reading.start(SHIPPED.triage, TEXTS[:5]).result()) == here(
        SHIPPED.triage, TEXTS[:5]
    )
    first = reading.pid()
    assert first is not None
    pending = reading.start(SHIPPED.triage, TEXTS)
    os.kill(first, signal.SIGKILL)
    assert read_as(pending.result()) == here(SHIPPED.triage, TEXTS)
    assert pending.read_there is False  # read here instead
    assert gone(first)
    again = reading.start(SHIPPED.triage, TEXTS[:5])
    assert read_as(again.result()) == here(SHIPPED.triage, TEXTS[:5])
    assert again.read_there  # by a new one, the rule set sent anew
    assert reading.pid() not in (None, first)


def test_a_process_that_died_idle_is_replaced_after_a_pause(
    reading: Readers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(readers, "RESTART_SECONDS", 3600.0)
    reading.start(SHIPPED.triage, TEXTS[:5]).result()
    first = reading.pid()
    assert first is not None
    os.kill(first, signal.SIGKILL)  # no batch waiting on it
    assert gone(first, waited=False)  # ended; no one has waited for it yet
    # The next batches are read here while the pause lasts; the first waits for it.
    for _ in range(2):
        pending = reading.start(SHIPPED.triage, TEXTS)
        assert read_as(pending.result()) == here(SHIPPED.triage, TEXTS)
        assert pending.read_there is False
        assert reading.pid() is None
        assert gone(first)
    monkeypatch.setattr(readers, "RESTART_SECONDS", 0.0)
    pending = reading.start(SHIPPED.triage, TEXTS)
    assert read_as(pending.result()) == here(SHIPPED.triage, TEXTS)
    assert pending.read_there
    assert reading.pid() not in (None, first)


def test_a_process_that_does_not_answer_holds_nobody_up(
    reading: Readers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stopped, it reads nothing, and a batch larger than the pipe holds cannot even be
    sent: the caller is not held up past the answer's time limit, the batch is read here,
    the process is killed by its id."""
    assert reading.start(SHIPPED.triage, TEXTS[:5]).result()  # started, warm
    monkeypatch.setattr(readers, "ANSWER_SECONDS", 1.0)
    monkeypatch.setattr(readers, "STOP_SECONDS", 0.5)
    stuck = reading.pid()
    assert stuck is not None
    os.kill(stuck, signal.SIGSTOP)  # alive, reading and answering nothing
    big = TEXTS * 8
    assert sum(len(text.encode()) for text in big) > 2 * 65536  # more than a pipe holds
    handed: list[readers.Pending] = []
    caller = threading.Thread(
        target=lambda: handed.append(reading.start(SHIPPED.triage, big)), daemon=True
    )
    caller.start()
    caller.join(timeout=10)  # were it sending itself, it would wait for ever
    assert handed, "start() waited on a process that reads nothing"
    assert read_as(handed[0].result()) == here(SHIPPED.triage, big)
    assert handed[0].read_there is False
    assert gone(stuck)  # killed, and waited for
    assert reading.pid() is None


def test_stopping_ends_the_process(reading: Readers) -> None:
    reading.start(SHIPPED.triage, TEXTS[:5]).result()
    pid = reading.pid()
    assert pid is not None
    reading.stop()
    assert reading.pid() is None
    assert gone(pid)


ORPHAN = """
import os, sys
sys.path.insert(0, {root!r})
from policies.engine import RuleSet
from policies.readers import Readers
reading = Readers(min_batch=1)
reading.start(RuleSet.load().triage, ["hello there"]).result()
print(reading.pid(), flush=True)
os.kill(os.getpid(), 9)  # dies without stopping anything
"""


def test_the_process_ends_when_its_parent_dies_without_stopping_it() -> None:
    root = str(Path(__file__).resolve().parent.parent)
    parent = subprocess.Popen(
        [sys.executable, "-c", ORPHAN.format(root=root)], stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert parent.stdout is not None
    line = parent.stdout.readline()
    assert parent.wait(timeout=120) == -signal.SIGKILL
    parent.stdout.close()
    orphan = int(line)
    assert gone(orphan, waited=False), f"the reading process {orphan} outlived its parent"


T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def test_a_stored_batch_is_triaged_as_if_read_in_place(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A poller's batch big enough to be read in the other process: each post keeps what
    triage in this process makes of it."""
    batch = [
        PostCreate.model_validate({
            "channel": "x", "external_id": f"reader-{n}", "author": f"@reader{n % 7}",
            "author_profile": {"id": f"reader{n % 7}", "followers": 10 ** (n % 6)},
            "text": row["text"], "url": f"https://x.com/r/status/{n}",
            "received_at": T0.isoformat(), "origin": row["origin"],
        })
        for n, row in enumerate(rows()[: readers.MIN_BATCH * 3])
    ]  # fmt: skip
    assert len(batch) >= readers.MIN_BATCH
    ours = Readers()
    monkeypatch.setattr(ingest, "READERS", ours)
    started = ours.start
    handed: list[readers.Pending] = []

    def start(rules: triage.Rules, texts: list[str]) -> readers.Pending:
        handed.append(started(rules, texts))
        return handed[-1]

    monkeypatch.setattr(ours, "start", start)
    with database.write_session() as session:
        ingest.store(session, batch, rules=RuleBook(), actor="poller:t", actor_role="integration")
    ours.stop()
    assert [pending.read_there for pending in handed] == [True]  # by the other process
    with database.engine.connect() as connection:
        stored = {
            row.external_id: row
            for row in connection.execute(
                select(POSTS.c.external_id, POSTS.c.priority, POSTS.c.topic, POSTS.c.language,
                       POSTS.c.sentiment, POSTS.c.triage)
                .where(POSTS.c.external_id.like("reader-%"))
            )
        }  # fmt: skip
    assert len(stored) == len(batch)
    for data in batch:
        profile = data.author_profile
        assert profile is not None
        expected = triage.triage(
            SHIPPED.triage, data.text, origin=data.origin.value, at=data.received_at,
            author=triage.Author(followers=profile.followers, verified=profile.verified),
        )  # fmt: skip
        row = stored[data.external_id]
        assert (row.priority, row.topic, row.language, row.sentiment, row.triage) == (
            expected.priority, expected.topic, expected.language, expected.sentiment,
            expected.reasons,
        ), data.text  # fmt: skip
