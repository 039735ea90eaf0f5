"""The benchmarks run end to end (short, on their own throw-away stacks) and print what
they promise. No figure is judged here: speed is the benchmarks' business, not the tests'.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.plugins import commands

PROJECT_ROOT = Path(__file__).resolve().parents[2]
RATE = r"([\d.]+) req/s"


@pytest.fixture
def bench_tmp() -> Iterator[Path]:
    """The benches' TMPDIR: a folder the ``postgres`` user can enter (pytest's cannot)."""
    folder = Path(tempfile.mkdtemp(prefix="bench-test-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def wrk() -> None:
    """The throughput benchmarks drive their contenders with wrk."""
    assert shutil.which("wrk"), "the benchmarks need wrk (Debian: apt-get install wrk)"


def run_bench(script: str, folder: Path, *args: str) -> str:
    """``python bench/<script> args`` with its temporary folders in ``folder``."""
    done = commands.run(
        [sys.executable, str(PROJECT_ROOT / "bench" / script), *args],
        cwd=PROJECT_ROOT, env={**os.environ, "TMPDIR": str(folder)}, timeout=150,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert_nothing_left(folder)
    return done.stdout


def assert_nothing_left(folder: Path) -> None:
    """The bench removed its folders and stopped every process it started."""
    assert list(folder.iterdir()) == []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        assert str(folder) not in cmdline, cmdline


def rate(output: str, label: str) -> float:
    found = re.search(rf"^  {re.escape(label)}\s+{RATE}", output, re.MULTILINE)
    assert found is not None, (label, output)
    return float(found[1])


def printed_ratio(output: str, label: str) -> float:
    found = re.search(rf"^  {re.escape(label)}\s+([\d.]+)", output, re.MULTILINE)
    assert found is not None, (label, output)
    return float(found[1])


@pytest.mark.usefixtures("wrk")
def test_deposit_throughput_prints_three_rates_and_their_ratios(bench_tmp: Path) -> None:
    output = run_bench(
        "deposit_throughput.py", bench_tmp,
        "--seconds", "1", "--rounds", "1", "--warmup", "1", "--connections", "8",
    )  # fmt: skip
    app = rate(output, "app create-deposit")
    flow = rate(output, "bare same round trips")
    insert = rate(output, "bare single INSERT")
    assert min(app, flow, insert) > 0
    errors = re.findall(r"errors (\d+)", output)
    assert errors == ["0", "0", "0"], output
    assert printed_ratio(output, "ratio app / bare INSERT") == pytest.approx(
        app / insert, abs=0.006
    )
    assert printed_ratio(output, "ceiling: bare flow / bare INSERT") == pytest.approx(
        flow / insert, abs=0.006
    )
    assert printed_ratio(output, "app / bare flow") == pytest.approx(app / flow, abs=0.006)


@pytest.mark.usefixtures("wrk")
def test_loadgen_efficiency_prints_wrk_and_the_runner_with_one_and_two_workers(
    bench_tmp: Path,
) -> None:
    output = run_bench(
        "loadgen_efficiency.py", bench_tmp, "--seconds", "1", "--rounds", "1", "--users", "10"
    )
    reference = rate(output, "wrk")
    assert reference > 0
    for workers in (1, 2):
        label = f"runner, {workers} worker(s)"
        runner = rate(output, label)
        assert runner > 0
        found = re.search(rf"^  {re.escape(label)}.*ratio\s+([\d.]+)", output, re.MULTILINE)
        assert found is not None, output
        assert float(found[1]) == pytest.approx(runner / reference, abs=0.006)


@pytest.mark.light
def test_samples_memory_prints_bytes_per_sample_in_memory_and_on_disk(bench_tmp: Path) -> None:
    output = run_bench("samples_memory.py", bench_tmp, "--samples", "2000")
    assert "2000 samples read back" in output
    in_memory = float(re.search(r"in memory\s+([\d.]+) bytes", output)[1])  # type: ignore[index]
    on_disk = float(re.search(r"on disk\s+([\d.]+) bytes", output)[1])  # type: ignore[index]
    assert in_memory > 0
    assert on_disk > 0
    assert printed_ratio(output, "ratio memory / disk") == pytest.approx(
        in_memory / on_disk, abs=0.006
    )
