"""Inside a Locust process: write every request sample and every money operation to files.

Installed by the locustfile when ``HARNESS_SAMPLES_DIR`` is set. Locust's own statistics
round response times; these files keep each request exactly, so the runner can compute
exact percentiles and cut any time window. The money operations (``load/operations.py``)
are the client's own record that the invariants oracle compares with the database.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import IO, Any

from load.operations import Outcome, complete_line, invoke_line
from load.samples import sample_line

_FLUSH_EVERY = 0.5


class Recorder:
    """Appends samples and operations to this process's files.

    Samples are buffered and flushed twice a second; operations are line-buffered, so that
    a request is on disk before it goes out, whatever happens to the process afterwards.
    """

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        pid = os.getpid()
        self.folder = folder
        self._samples: IO[str] = (folder / f"samples-{pid}.jsonl").open("a", buffering=1 << 16)
        self._ops: IO[str] = (folder / f"ops-{pid}.jsonl").open("a", buffering=1)
        self._summary = folder / f"summary-{pid}.json"
        self._last_flush = time.monotonic()
        self.count = 0

    def on_request(
        self,
        request_type: str,
        name: str,
        response_time: float,
        response_length: int,
        response: Any = None,
        context: Any = None,
        exception: Any = None,
        start_time: float | None = None,
        url: str | None = None,
        **_: Any,
    ) -> None:
        status = int(getattr(response, "status_code", 0) or 0)
        code = service = None
        if status >= 400 or exception is not None:
            code, service = _error_of(response, exception, status)
        started = start_time if start_time is not None else time.time() - response_time / 1000
        # Once per request: the line is written straight from the values (no Sample object).
        self._samples.write(sample_line(started, name, response_time, status,
                                        exception is not None, code, service))  # fmt: skip
        self.count += 1
        now = time.monotonic()
        if now - self._last_flush >= _FLUSH_EVERY:
            self._samples.flush()
            self._last_flush = now

    def invoke(self, op: str, kind: str, sent: dict[str, Any]) -> None:
        """Record a money-moving request about to be sent, with the values it carries."""
        self._ops.write(invoke_line(op, kind, time.time(), sent))

    def complete(
        self,
        op: str,
        outcome: Outcome,
        status: int,
        detail: str | None,
        returned: dict[str, Any],
    ) -> None:
        """Record how the request ``op`` ended."""
        self._ops.write(complete_line(op, time.time(), outcome, status, detail, returned))

    def close(self, **summary: Any) -> None:
        self._samples.flush()
        self._ops.flush()
        self._summary.write_text(json.dumps({"samples": self.count, **summary}))
        self._samples.close()
        self._ops.close()


def _error_of(response: Any, exception: Any, status: int) -> tuple[str | None, str | None]:
    """The error code and service from the app's error body.

    Without such a body: the exception's class when there was no answer at all (status 0),
    else nothing, which is what marks an answer as unstructured (e.g. a bare 500).
    """
    try:
        body = json.loads(getattr(response, "text", None) or "")
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            return str(error.get("code")), str(error.get("service"))
    except (ValueError, TypeError):
        pass
    if exception is not None and status == 0:
        return type(exception).__name__, None
    return None, None
