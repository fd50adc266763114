"""Reading a batch's texts on another core (issue 22, item 10).

The costly part of triage is reading a post's text (`policies.triage.read_text`: the
section's words, lingua, VADER; 0.15 to 0.3 ms a post, a third of a post's ingest). The
ingest hands a batch's texts to a process of its own as soon as it knows which posts are
new, resolves the batch's authors and threads in the database meanwhile, and takes the
readings when it triages (`records.ingest`). Two cores then share the work one did.

One such process beside each process that ingests, started by the first batch worth it (a
lone post from the API or a webhook is read where it is). It is this Python, isolated from
the environment (`-I`) and given this process's module path, asked and answering over two
pipes of its own, in order; a thread of ours does the asking, so a busy or stuck process
never holds up the caller, whose wait for an answer is bounded. It stops when its parent
stops it or exits, and when its parent dies its pipe ends and so does it. Nothing depends on it:
if it has gone, or does not answer in time, the batch is read here, it is stopped by its
process id, and a new one starts after a pause. A rule set travels to it once, under a
number never given to another.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import logging
import os
import queue
import subprocess
import sys
import threading
import time
from collections import deque
from concurrent.futures import Future
from multiprocessing.connection import Connection
from typing import Any

from policies.triage import Reading, Rules, read_text

log = logging.getLogger("countersign.readers")

# Below this many posts a batch is read where it is: handing it over costs more than it saves.
MIN_BATCH = 16
# A batch the other process has not read in this long is read here (it would be seconds
# for a batch of a thousand posts on a busy machine).
ANSWER_SECONDS = 30.0
# After a process failed, batches are read here this long before another is started.
RESTART_SECONDS = 30.0
# Rule sets the other process keeps (the one in force and the ones just before), and those
# this one knows by number.
KEPT_RULE_SETS = 4
NUMBERED_RULE_SETS = 16
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
        self.read_there: bool | None = None  # once read: whether the other process read it

    def result(self) -> list[Reading]:
        if self._future is not None:
            try:
                readings = self._future.result(timeout=ANSWER_SECONDS)
            except (TimeoutError, BrokenPipeError) as exc:  # stuck or gone: start anew later
                log.warning("the reading process failed (%r); reading the batch here", exc)
                self._readers.failed(self._process)
            except Exception as exc:  # reading raised there; here it is the caller's to see
                log.warning("reading the batch failed in the reading process (%r)", exc)
            else:
                if len(readings) == len(self._texts):
                    self.read_there = True
                    return readings
                log.warning("%d readings for %d texts", len(readings), len(self._texts))
                self._readers.failed(self._process)
        self.read_there = False
        return [read_text(self._rules, text) for text in self._texts]


class Readers:
    """The process that reads batches' texts for this one (see the module's docstring)."""

    def __init__(self, min_batch: int = MIN_BATCH) -> None:
        self.min_batch = min_batch
        self._lock = threading.Lock()
        self._process: _Process | None = None
        self._failed_at = -float("inf")  # time.monotonic() of the last failure
        # id(rules) -> (the rules, kept so that the id is not another's; their number); more
        # than the process keeps, so a rule set that comes back keeps its number
        self._rule_sets: dict[int, tuple[Rules, int]] = {}
        self._numbers = itertools.count(1)

    def start(self, rules: Rules, texts: list[str]) -> Pending:
        """The readings of `texts` by `rules`, read in the other process (started now if
        need be) when there are enough of them to be worth it. Never blocks on it."""
        if len(texts) < self.min_batch:
            return Pending(self, rules, texts)
        ended = None
        with self._lock:
            if self._process is not None and self._process.ended():
                log.warning("the reading process has ended; reading here for a while")
                ended, self._process, self._failed_at = self._process, None, time.monotonic()
            if self._process is None and time.monotonic() - self._failed_at >= RESTART_SECONDS:
                try:
                    self._process = _Process()
                except Exception as exc:  # no process, no thread to talk to it: read here
                    log.warning("could not start the reading process (%r); reading here", exc)
                    self._failed_at = time.monotonic()
            process = self._process
            future = process.ask(self._number(rules), rules, texts) if process else None
        if ended is not None:
            ended.stop(kill=True)  # waited for, outside the lock: no zombie, no open pipe
        return Pending(self, rules, texts, future, process)

    def pid(self) -> int | None:
        """The reading process's id, while it runs."""
        process = self._process
        return process.popen.pid if process is not None else None

    def failed(self, process: _Process | None) -> None:
        """`process` did not answer as it should: kill it, if still the one in use (another
        batch may have found it gone already), and read here for a while."""
        with self._lock:
            if process is None or process is not self._process:
                return
            self._process, self._failed_at = None, time.monotonic()
        process.stop(kill=True)

    def stop(self) -> None:
        """Stop the reading process once it has read what it was given, or by its id if it
        does not end in time (a next batch starts another)."""
        with self._lock:
            process, self._process = self._process, None
        if process is not None:
            process.stop()

    def _number(self, rules: Rules) -> int:
        kept = self._rule_sets.get(id(rules))
        if kept is None:
            kept = (rules, next(self._numbers))
            self._rule_sets[id(rules)] = kept
            while len(self._rule_sets) > NUMBERED_RULE_SETS:
                del self._rule_sets[next(iter(self._rule_sets))]
        return kept[1]


class _Process:
    """A running reading process, its pipes and the two threads that talk to it: one sends
    the questions in the order they were asked (blocking, when the process is busy, only
    itself), one takes the answers, which come in that order, to their questions."""

    def __init__(self) -> None:
        ask_there, ask_here = os.pipe()
        answer_here, answer_there = os.pipe()
        # Its modules are found where this process finds them (the working directory as it
        # is now, never as the child's own), and it checks that this module is this one.
        path = os.pathsep.join(os.path.abspath(entry or os.curdir) for entry in sys.path)
        try:
            self.popen = subprocess.Popen(  # noqa: S603 (this Python, our own code)
                [sys.executable, "-I", "-c", BOOT, path, __file__, str(ask_there),
                 str(answer_there)],
                pass_fds=(ask_there, answer_there), stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, start_new_session=True,  # Ctrl-C is its parent's
            )  # fmt: skip
        except BaseException:
            os.close(ask_here)
            os.close(answer_here)
            raise
        finally:
            os.close(ask_there)
            os.close(answer_there)
        self._questions = Connection(ask_here, readable=False)
        self._answers = Connection(answer_here, writable=False)
        self._outbox: queue.SimpleQueue[tuple[Future[list[Reading]], Any] | None] = (
            queue.SimpleQueue()
        )
        self._waiting: deque[Future[list[Reading]]] = deque()  # sent, in order
        # The rule sets it will have, by number, in the order they were sent: it keeps the
        # latest few, dropping the one sent longest ago, as this does.
        self._held: dict[int, None] = {}
        self._ended = False
        self._lock = threading.Lock()
        try:
            for talk in (self._send, self._listen):
                threading.Thread(target=talk, name=f"readers{talk.__name__}", daemon=True).start()
        except BaseException:
            self.stop(kill=True)
            raise

    def ask(self, number: int, rules: Rules, texts: list[str]) -> Future[list[Reading]]:
        future: Future[list[Reading]] = Future()
        with self._lock:
            if self._ended:
                future.set_exception(BrokenPipeError("the reading process has ended"))
                return future
            sent = None if number in self._held else rules
            self._outbox.put((future, (number, sent, texts)))
            if sent is not None:
                _keep(self._held, number, None)
        return future

    def ended(self) -> bool:
        return self._ended or self.popen.poll() is not None

    def stop(self, kill: bool = False) -> None:
        """Ask it to end once it has answered what it was asked (`kill`: end it now), by
        its id if it has not within `STOP_SECONDS`; then wait for it."""
        self._outbox.put(None)  # the sender closes the pipe when it comes to this
        if kill:
            self.popen.kill()
        try:
            self.popen.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):  # in the kernel's hands now
                self.popen.wait(timeout=STOP_SECONDS)
        self._end(BrokenPipeError("the reading process was stopped"))

    def _send(self) -> None:
        """Until `stop`: each question sent, or failed once nothing will answer it."""
        while (item := self._outbox.get()) is not None:
            future, question = item
            with self._lock:
                if self._ended:
                    future.set_exception(BrokenPipeError("the reading process has ended"))
                    continue
                self._waiting.append(future)
            try:
                self._questions.send(question)
            except BaseException as exc:  # a pipe that broke, a question that would not pickle
                self._end(exc)
                if self.popen.poll() is None:  # a question half sent: it is trusted no more
                    self.popen.kill()
        self._questions.close()  # its end of the pipe ends: it exits

    def _listen(self) -> None:
        try:
            while True:
                answer = self._answers.recv()
                with self._lock:
                    future = self._waiting.popleft()
                if isinstance(answer, BaseException):
                    future.set_exception(answer)
                else:
                    future.set_result(answer)
        except BaseException as exc:  # it ended, or said what no question asked
            self._end(exc)
        finally:
            self._answers.close()

    def _end(self, why: BaseException) -> None:
        """Nothing more will be answered: every question sent fails (the sender fails
        those it has yet to send)."""
        with self._lock:
            self._ended = True
            waiting, self._waiting = list(self._waiting), deque()
        for future in waiting:
            if not future.done():
                future.set_exception(BrokenPipeError(f"the reading process ended: {why!r}"))


def _keep(kept: dict[int, Any], number: int, rules: Any) -> None:
    """A rule set just sent, in both processes: the latest `KEPT_RULE_SETS` are kept."""
    kept[number] = rules
    while len(kept) > KEPT_RULE_SETS:
        del kept[next(iter(kept))]


# The reading process's start: the parent's module path, and a check that this module
# is the parent's own (else it ends at once, and the parent reads for itself).
BOOT = (
    "import os, sys\n"
    "sys.path[:] = sys.argv[1].split(os.pathsep)\n"
    "import policies.readers as readers\n"
    "if os.path.samefile(readers.__file__, sys.argv[2]):\n"
    "    readers.serve(int(sys.argv[3]), int(sys.argv[4]))\n"
    "else:\n"
    "    sys.exit(f'policies.readers is {readers.__file__}, not {sys.argv[2]}')\n"
)

# This process's: the ingest's readings (`records.ingest`).
READERS = Readers()
atexit.register(READERS.stop)


def serve(asked: int, answered: int) -> None:
    """The reading process: each question (a rule set's number, the rule set if new to it,
    texts) answered with the texts' readings, or the exception reading them raised."""
    questions = Connection(asked, writable=False)
    answers = Connection(answered, readable=False)
    rule_sets: dict[int, Rules] = {}
    while True:
        try:
            number, rules, texts = questions.recv()
        except (EOFError, KeyboardInterrupt):
            return  # its parent stopped it, or is gone
        answer: Any
        try:
            if rules is not None:
                _keep(rule_sets, number, rules)
            answer = [read_text(rule_sets[number], text) for text in texts]
        except Exception as exc:
            answer = exc
        answers.send(answer)
