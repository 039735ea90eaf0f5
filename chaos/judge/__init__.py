"""Judging a run: its records (evidence) turned into verdicts (thresholds, isolation, effects,
invariants, validity) and an exit code, with no I/O, so every verdict is tested on made-up
evidence."""
