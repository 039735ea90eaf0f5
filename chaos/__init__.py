"""Chaos harness: breaks the reference backend on purpose and judges what clients saw."""
