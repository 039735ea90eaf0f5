"""The app's metrics of several workers, merged from their files (reference_app/metrics.py)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.multiprocess import MultiProcessCollector

from isolation_harness.reference_app.metrics import WorkerFiles


def worker_file(folder: Path, pid: int, value: float) -> None:
    written = MmapedDict(str(folder / f"counter_{pid}.db"))
    key = mmap_key("requests_total", "requests_total", ["route"], ["/x"], "Requests.")
    written.write_value(key, value, 0.0)
    written.close()


def test_a_worker_file_not_sized_yet_is_skipped_not_a_failed_scrape(tmp_path: Path) -> None:
    worker_file(tmp_path, 101, 3.0)
    worker_file(tmp_path, 102, 4.0)
    (tmp_path / "counter_103.db").touch()  # a worker between creating and sizing its file
    # what prometheus-client's own collector does with it: the whole scrape fails
    with pytest.raises(struct.error):
        generate_latest_of(MultiProcessCollector, tmp_path)
    registry = CollectorRegistry()
    registry.register(WorkerFiles(str(tmp_path)))
    text = generate_latest(registry).decode()
    assert 'requests_total{route="/x"} 7.0' in text


def generate_latest_of(collector: type[MultiProcessCollector], folder: Path) -> bytes:
    registry = CollectorRegistry()
    collector(registry, path=str(folder))  # type: ignore[no-untyped-call]
    return generate_latest(registry)
