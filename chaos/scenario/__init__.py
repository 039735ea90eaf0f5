"""Scenario files: the model (load, timeline of faults, thresholds, invariants), the threshold
and window grammar, the loader that names file, line and field, and legacy counterparts."""
