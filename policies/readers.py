"""Reading a batch's texts on another core (issue 22, item 10).

The costly part of triage is reading a post's text (`policies.triage.read_text`: the
section's words, lingua, VADER; 0.15 to 0.3 ms a post, a third of a post's ingest). The
ingest hands a batch's texts to a process of its own as soon as it knows which posts are
new, resolves the batch's authors and threads in the database meanwhile, and takes the
readings when it triages (`records.ingest`). Two cores then share the work one did.

One such process beside each process that ingests, started by the first batch worth it (a
lone post from the API or a webhook is read where it is): `python -m policies.readers`,
asked and answering over two pipes of its own, in order. It stops when its parent stops it
or exits, and when its parent dies its pipe ends and so does it. Nothing depends on it: if
it has gone, or does not answer in time, the batch is read here and the next batch starts a
new one. A rule set travels to it once, under a number never given to another.
"""

from __future__ import annotations

import atexit
import itertools
import logging
import os
import subprocess
import sys
import threading
from collections import deque
from concurrent.futures import Future
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from policies.triage import Reading, Rules, read_text

log = logging.getLogger("countersign.readers")

# Below this many posts a batch is read where it is: handing it over costs more than it saves.
MIN_BATCH = 16
# A batch the other process has not read in this long is read here (it would be seconds
# for a batch of a thousand posts on a busy machine).
ANSWER_SECONDS = 30.0
# Rule sets the other process keeps (the one in force and the ones just before).
KEPT_RULE_SETS = 4
# How long a stopped process has to end before it is killed.
STOP_SECONDS = 5.0


class Pending:
    """A batch's readings, being made: `result()` waits for them."""

    def __init__(
        self,
        readers: Readers,
        rules: Rules,
        texts: list[str],
        future: Future[list[Reading]] | None = None,
        process: _Process | None = None,
    ) -> None:
        self._readers, self._rules, self._texts = readers, rules, texts
        self._future, self._process = future, process

    def result(self) -> list[Reading]:
        if self._future is not None:
            try:
                readings = self._future.result(timeout=ANSWER_SECONDS)
                if len(readings) == len(self._texts):
                    return readings
                raise ValueError(f"{len(readings)} readings for {len(self._texts)} texts")
            except Exception as exc:  # gone, stuck or wrong: read here, start anew
                log.warning("the reading process failed (%r); reading the batch here", exc)
                self._readers.stop(only=self._process)
        return [read_text(self._rules, text) for text in self._texts]


class Readers:
    """The process that reads batches' texts for this one (see the module's docstring)."""

    def __init__(self, min_batch: int = MIN_BATCH) -> None:
        self.min_batch = min_batch
        self._lock = threading.Lock()
        self._process: _Process | None = None
        # id(rules) -> (the rules, kept so that the id is not another's; their number)
        self._rule_sets: dict[int, tuple[Rules, int]] = {}
        self._numbers = itertools.count(1)

    def start(self, rules: Rules, texts: list[str]) -> Pending:
        """The readings of `texts` by `rules`, read in the other process (started now if
        need be) when there are enough of them to be worth it."""
        if len(texts) < self.min_batch:
            return Pending(self, rules, texts)
        with self._lock:
            number = self._number(rules)
            process = self._process
            try:
                if process is None:
                    process = self._process = _Process()
                future = process.ask(number, rules, texts)
            except OSError as exc:  # could not start or reach it: read here, start anew
                log.warning("the reading process is not there (%r); reading here", exc)
                self._process = None
                if process is not None:
                    process.stop()
                return Pending(self, rules, texts)
        return Pending(self, rules, texts, future, process)

    def pid(self) -> int | None:
        """The reading process's id, while it runs."""
        process = self._process
        return process.popen.pid if process is not None else None

    def stop(self, only: _Process | None = None) -> None:
        """Stop the reading process, by its id if it does not end when asked (a next batch
        starts another); `only`: if it is still that one (another batch may have started
        the next)."""
        with self._lock:
            if only is not None and only is not self._process:
                return
            process, self._process = self._process, None
        if process is not None:
            process.stop()

    def _number(self, rules: Rules) -> int:
        kept = self._rule_sets.get(id(rules))
        if kept is None:
            kept = (rules, next(self._numbers))
            self._rule_sets[id(rules)] = kept
            while len(self._rule_sets) > KEPT_RULE_SETS:
                del self._rule_sets[next(iter(self._rule_sets))]
        return kept[1]


class _Process:
    """A running `python -m policies.readers` and its pipes: each question is answered in
    turn, so the answers are matched to the questions in the order they were asked."""

    def __init__(self) -> None:
        ask_there, ask_here = os.pipe()
        answer_here, answer_there = os.pipe()
        root = str(Path(__file__).resolve().parent.parent)  # where `policies` is
        path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
        try:
            self.popen = subprocess.Popen(  # noqa: S603 (this Python, this module)
                [sys.executable, "-m", "policies.readers", str(ask_there), str(answer_there)],
                pass_fds=(ask_there, answer_there), env={**os.environ, "PYTHONPATH": path},
                stdin=subprocess.DEVNULL,
            )  # fmt: skip
        except BaseException:
            for fd in (ask_here, answer_here):
                os.close(fd)
            raise
        finally:
            os.close(ask_there)
            os.close(answer_there)
        self._questions = Connection(ask_here, readable=False)
        self._answers = Connection(answer_here, writable=False)
        self._waiting: deque[Future[list[Reading]]] = deque()
        self._held: set[int] = set()  # the rule sets it has, by number
        self._ended = False
        self._lock = threading.Lock()
        threading.Thread(target=self._listen, name="readers", daemon=True).start()

    def ask(self, number: int, rules: Rules, texts: list[str]) -> Future[list[Reading]]:
        future: Future[list[Reading]] = Future()
        with self._lock:
            if self._ended:
                raise EOFError("the reading process has ended")
            self._waiting.append(future)
            self._questions.send((number, None if number in self._held else rules, texts))
            self._held.add(number)  # it keeps the latest few, as this set does
            while len(self._held) > KEPT_RULE_SETS:
                self._held.remove(min(self._held))
        return future

    def stop(self) -> None:
        with self._lock:
            if not self._questions.closed:
                self._questions.close()  # its end of the pipe ends: it exits
        try:
            self.popen.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()

    def _listen(self) -> None:
        try:
            while True:
                answer = self._answers.recv()
                future = self._waiting.popleft()
                if isinstance(answer, BaseException):
                    future.set_exception(answer)
                else:
                    future.set_result(answer)
        except (EOFError, OSError) as exc:  # it ended: nothing more will be answered
            self._answers.close()
            with self._lock:
                self._ended = True
                while self._waiting:
                    ended = EOFError(f"the reading process ended: {exc!r}")
                    self._waiting.popleft().set_exception(ended)


# This process's: the ingest's readings (`records.ingest`).
READERS = Readers()
atexit.register(READERS.stop)


def serve(questions: Connection, answers: Connection) -> None:
    """The reading process: each question (a rule set's number, the rule set if new to it,
    texts) answered with the texts' readings, or the exception reading them raised."""
    rule_sets: dict[int, Rules] = {}
    while True:
        try:
            number, rules, texts = questions.recv()
        except EOFError:
            return  # its parent stopped it, or is gone
        answer: Any
        try:
            if rules is not None:
                rule_sets[number] = rules
                while len(rule_sets) > KEPT_RULE_SETS:
                    del rule_sets[min(rule_sets)]
            answer = [read_text(rule_sets[number], text) for text in texts]
        except Exception as exc:
            answer = exc
        answers.send(answer)


if __name__ == "__main__":
    asked, answered = (int(fd) for fd in sys.argv[1:3])
    serve(Connection(asked, writable=False), Connection(answered, readable=False))
