"""Request samples as the Locust processes write them (no Locust here).

One file per Locust process in the samples folder:

- ``samples-<pid>.jsonl``: one JSON array per request:
  ``[start (epoch s), name, latency (ms), status, failed (0|1), error code, error service,
  structured (0|1), transport error, user]``. ``failed`` is the user's verdict: an expected
  refusal (say a 409 on a race) is a success with its 4xx status. ``error code`` and
  ``error service`` are what the app's error body says; ``structured`` is 1 when that body
  has the app's error shape exactly (an ``error`` object with non-empty ``code``,
  ``message``, ``service`` and ``request_id`` strings). Status 0 means no HTTP answer, and
  ``transport error`` says why: ``timeout`` (the client gave up) or ``connection`` (refused,
  reset, closed); it is null whenever an answer came. ``user`` is the simulated user that
  made the request (``deposits#0.3``, ``load/seeding.py``), null if none is known.
- ``ops-<pid>.jsonl``: every request that creates or moves money, as the client sent it
  and as it ended (``load/operations.py``).
- ``summary-<pid>.json``: written when the process ends: ``{"cpu_warning": bool, ...}``.
- ``started-<pid>.json``: ``{"users": N}``, rewritten each time one more of the process's
  users is through its ``on_start`` (signed up and funded): the runner starts the timeline
  once every user of the plan is, rather than after a guessed second.

And once per run, from the process that runs the test (local or master):

- ``spawned.json``: written when every user is spawned: ``{"users": N, "at": epoch s}``.
"""

from __future__ import annotations

import contextlib
import functools
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: the file the Locust process running the test writes once every user is spawned
SPAWNED_FILE = "spawned.json"
#: the file each Locust process rewrites as its users finish ``on_start`` (``started-<pid>``)
STARTED_PREFIX = "started-"
#: why a request got no answer (``Sample.transport_error``)
TIMEOUT = "timeout"
CONNECTION = "connection"


@dataclass(frozen=True, slots=True)
class Sample:
    """One request as the client saw it."""

    start: float
    name: str
    latency_ms: float
    status: int
    failed: bool = False
    error_code: str | None = None
    error_service: str | None = None
    #: the answer's body has the app's error shape exactly (see the module docstring)
    structured: bool = False
    #: why no answer came (status 0): ``timeout`` or ``connection``; None if one came
    transport_error: str | None = None
    #: the simulated user that made it (``deposits#0.3``), None if not known
    user: str | None = None

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def timed_out(self) -> bool:
        return self.transport_error == TIMEOUT

    @property
    def connection_failed(self) -> bool:
        return self.transport_error == CONNECTION

    @property
    def end(self) -> float:
        return self.start + self.latency_ms / 1000

    def to_line(self) -> str:
        """This sample's line in a samples file, newline included."""
        return sample_line(self.start, self.name, self.latency_ms, self.status, self.failed,
                           self.error_code, self.error_service, self.structured,
                           self.transport_error, self.user)  # fmt: skip

    @classmethod
    def from_line(cls, line: str) -> Sample:
        (start, name, latency, status, failed, code, service, structured, transport,
         user) = json.loads(line)  # fmt: skip
        # A run reads millions of samples sharing a few names and codes: one string each.
        return cls(
            float(start), sys.intern(str(name)), float(latency), int(status), bool(failed),
            None if code is None else sys.intern(str(code)),
            None if service is None else sys.intern(str(service)),
            bool(structured), None if transport is None else sys.intern(str(transport)),
            None if user is None else sys.intern(str(user)),
        )  # fmt: skip


def sample_line(
    start: float,
    name: str,
    latency_ms: float,
    status: int,
    failed: bool,
    error_code: str | None,
    error_service: str | None,
    structured: bool = False,
    transport_error: str | None = None,
    user: str | None = None,
) -> str:
    """A sample's line, newline included, as :meth:`Sample.from_line` reads it.

    Written once per request inside the load generator: formatted by hand, as the JSON
    array ``json.dumps`` would give, at a fraction of its cost.
    """
    return (
        f"[{start:.6f},{_json_text(name)},{latency_ms:.3f},{status},{int(failed)},"
        f"{_json_text(error_code)},{_json_text(error_service)},{int(structured)},"
        f"{_json_text(transport_error)},{_json_text(user)}]\n"
    )


@functools.lru_cache(maxsize=1024)
def _json_text(value: str | None) -> str:
    return "null" if value is None else json.dumps(value)


def _lines(folder: Path, pattern: str) -> Iterator[str]:
    for path in sorted(folder.glob(pattern)):
        with path.open() as handle:
            for line in handle:
                # The last line of a file still being written may be incomplete.
                if line.endswith("\n"):
                    yield line


def read_samples(folder: Path) -> list[Sample]:
    """Every complete sample of every process, ordered by start time."""
    return sorted((Sample.from_line(line) for line in _lines(folder, "samples-*.jsonl")),
                  key=lambda s: s.start)  # fmt: skip


class SampleCounter:
    """How many complete samples the files of ``folder`` hold so far (for progress).

    Asked twice a second during a run, it reads only what was appended since it last
    looked: counting every line again would read the whole, growing files each time, on
    the machine that generates the load.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.count = 0
        self._consumed: dict[Path, int] = {}  # bytes up to the last complete line counted

    def update(self) -> int:
        for path in sorted(self.folder.glob("samples-*.jsonl")):
            offset = self._consumed.get(path, 0)
            try:
                with path.open("rb") as handle:
                    handle.seek(offset)
                    appended = handle.read()
            except FileNotFoundError:
                continue
            self.count += appended.count(b"\n")
            self._consumed[path] = offset + appended.rfind(b"\n") + 1
        return self.count


def started_users(folder: Path) -> int:
    """How many users of every process of the run are through their ``on_start``."""
    total = 0
    for path in folder.glob(f"{STARTED_PREFIX}*.json"):
        with contextlib.suppress(OSError, ValueError):  # replaced whole, but maybe not yet
            total += int(json.loads(path.read_text())["users"])
    return total


def read_summaries(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(folder.glob("summary-*.json"))]
