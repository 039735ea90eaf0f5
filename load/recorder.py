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

from isolation_harness.load.operations import Outcome, complete_line, invoke_line
from isolation_harness.load.samples import CONNECTION, STARTED_PREFIX, TIMEOUT, sample_line

#: the fields of the app's error object, each a non-empty string
ERROR_FIELDS = ("code", "message", "service", "request_id")

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
        self._started = folder / f"{STARTED_PREFIX}{pid}.json"
        self.users_started = 0
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
        code = service = transport = None
        structured = False
        if status == 0:
            transport = transport_error(exception)
        elif status >= 400 or exception is not None:
            code, service, structured = error_identity(getattr(response, "text", None))
        started = start_time if start_time is not None else time.time() - response_time / 1000
        user = context.get("user") if isinstance(context, dict) else None
        # Once per request: the line is written straight from the values (no Sample object).
        self._samples.write(sample_line(started, name, response_time, status,
                                        exception is not None, code, service, structured,
                                        transport, user))  # fmt: skip
        self.count += 1
        now = time.monotonic()
        if now - self._last_flush >= _FLUSH_EVERY:
            self._samples.flush()
            self._last_flush = now

    def user_started(self) -> None:
        """One more user of this process is through its ``on_start``: say so, replacing the
        file whole (the runner may read it at any time)."""
        self.users_started += 1
        partial = self._started.with_suffix(".tmp")
        partial.write_text(json.dumps({"users": self.users_started}))
        partial.replace(self._started)

    def invoke(self, op: str, kind: str, sent: dict[str, Any], user: str | None = None) -> None:
        """Record a money-moving request about to be sent, with the values it carries and
        the simulated user sending it."""
        self._ops.write(invoke_line(op, kind, time.time(), sent, user))

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


def error_identity(text: str | None) -> tuple[str | None, str | None, bool]:
    """The error code and service an answer's body names, and whether the body has the
    app's error shape exactly: ``{"error": {"code", "message", "service", "request_id"}}``
    with each a non-empty string.

    A body that is not the app's (a bare 500, a proxy's page) names nothing: that is what
    marks an answer as unstructured.
    """
    try:
        body = json.loads(text or "")
    except (ValueError, TypeError):
        return None, None, False
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None, None, False
    code, service = error.get("code"), error.get("service")
    structured = all(isinstance(error.get(key), str) and error[key] for key in ERROR_FIELDS)
    return (
        code if isinstance(code, str) and code else None,
        service if isinstance(service, str) and service else None,
        structured,
    )


def transport_error(exception: Any) -> str:
    """Why no answer came: the client's own timeout, or a connection refused/reset/closed.

    geventhttpclient wraps what went wrong (``RetriesExceeded(original=timed out)``), so
    the wrapped errors are looked at too.
    """
    seen: set[int] = set()
    while exception is not None and id(exception) not in seen:
        seen.add(id(exception))
        if isinstance(exception, TimeoutError) or "timeout" in type(exception).__name__.lower():
            return TIMEOUT
        exception = (
            getattr(exception, "original", None)
            or getattr(exception, "__cause__", None)
            or getattr(exception, "__context__", None)
        )
    return CONNECTION
