"""Memory the runner needs to hold every sample of a run, beside the samples' size on disk.

    .venv/bin/python bench/samples_memory.py [--samples 500000]

Writes ``--samples`` samples (a few request names and error codes, as a run has) to a
throw-away folder the way the Locust processes do, reads them back with
:func:`load.samples.read_samples` as the runner does at the end of a run, and prints the
bytes per sample in memory (tracemalloc) and on disk, and their ratio. A 10-minute run at
10 000 requests/s holds 6 million samples.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from isolation_harness.load.samples import read_samples, sample_line  # noqa: E402

NAMES = ["deposits.create", "deposits.get", "wallet.balances", "p2p.trade_open", "swap.quote"]
#: (status, error code, error service, structured, transport error), as a run has them
ERRORS = [(200, None, None, False, None)] * 18 + [
    (503, "pool_timeout", "p2p", True, None),
    (0, None, None, False, "timeout"),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=500_000)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-samples-"))
    try:
        rng = random.Random(7)
        with (folder / "samples-1.jsonl").open("w") as handle:
            start = 1_764_356_000.0
            for n in range(args.samples):
                status, code, service, structured, transport = rng.choice(ERRORS)
                handle.write(sample_line(start + n / 10_000, rng.choice(NAMES),
                                         rng.uniform(1, 200), status, status != 200, code,
                                         service, structured, transport))  # fmt: skip
        on_disk = (folder / "samples-1.jsonl").stat().st_size / args.samples
        tracemalloc.start()
        samples = read_samples(folder)
        in_memory = tracemalloc.get_traced_memory()[0] / len(samples)
        tracemalloc.stop()
        print(f"{len(samples)} samples read back")
        print(f"  in memory   {in_memory:7.1f} bytes per sample")
        print(f"  on disk     {on_disk:7.1f} bytes per sample")
        print(f"  ratio memory / disk   {in_memory / on_disk:5.2f}")
        print(f"  6 million samples (10 min at 10 000 req/s): "
              f"{in_memory * 6e6 / 2**30:.2f} GiB in memory")  # fmt: skip
        return 0
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
