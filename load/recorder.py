"""Inside a Locust process: write every request sample and every acknowledgement to files.

Installed by the locustfile when ``HARNESS_SAMPLES_DIR`` is set. Locust's own statistics
round response times; these files keep each request exactly, so the runner can compute
exact percentiles and cut any time window.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import IO, Any

from load.samples import sample_line

_FLUSH_EVERY = 0.5


class Recorder:
    """Appends samples and acks to this process's files (buffered, flushed twice a second)."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        pid = os.getpid()
        self.folder = folder
        self._samples: IO[str] = (folder / f"samples-{pid}.jsonl").open("a", buffering=1 << 16)
        self._acks: IO[str] = (folder / f"acks-{pid}.jsonl").open("a", buffering=1 << 12)
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

    def ack(self, kind: str, **fields: Any) -> None:
        """Record an acknowledged call that created or moved money."""
        record = {"kind": kind, "at": time.time(), **fields}
        self._acks.write(json.dumps(record, default=str, separators=(",", ":")) + "\n")

    def close(self, **summary: Any) -> None:
        self._samples.flush()
        self._acks.flush()
        self._summary.write_text(json.dumps({"samples": self.count, **summary}))
        self._samples.close()
        self._acks.close()


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
