"""bench/stability.py stops the suite it runs beside a scenario with a Ctrl-C the suite
answers, even when the bench itself was started in the background, ignoring SIGINT."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.plugins import commands

ROOT = Path(__file__).resolve().parents[2]

SUITE = """\
import time
print("suite started", flush=True)
try:
    time.sleep(60)
except KeyboardInterrupt:
    print("suite stopped by SIGINT", flush=True)
"""

BENCH = """\
import sys, time
sys.path.insert(0, {bench!r})
import stability
stability.SETTLE = 0.5
stability.BESIDE = [sys.executable, "-c", {suite!r}]
with stability.suite_beside(stability.Path({log!r})):
    time.sleep(1)
"""


def test_the_suite_beside_is_stopped_by_sigint_when_the_bench_ignores_it(tmp_path: Path) -> None:
    log = tmp_path / "suite.log"
    bench = BENCH.format(bench=str(ROOT / "bench"), suite=SUITE, log=str(log))
    # as `nohup … &` starts it: SIGINT ignored, and inherited ignored by what it starts
    result = commands.run(
        ["sh", "-c", 'trap "" INT; exec "$0" -c "$1"', sys.executable, bench], timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert log.read_text().splitlines() == ["suite started", "suite stopped by SIGINT"]
