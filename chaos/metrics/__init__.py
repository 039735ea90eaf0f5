"""The metrics thresholds compare: one function each, registered by name with its kind
(:func:`~chaos.metrics.base.metric`), measured on one request group in one window
(:class:`~chaos.metrics.window.GroupWindow`).

A new metric is one new module, imported here, and its line in ``docs/scenarios.md``
(see :mod:`chaos.metrics.base`).
"""

from isolation_harness.chaos.metrics.base import (
    REGISTRY,
    Kind,
    Measured,
    Metric,
    kind_of,
    lookup,
    metric,
    plain,
    takes_argument,
    written,
)
from isolation_harness.chaos.metrics.window import GroupWindow, services_of

# isort: off
# The metrics, in the order error messages list them (each registers as it is defined).
from isolation_harness.chaos.metrics import counts, pools, failures, latency
# isort: on

__all__ = [
    "REGISTRY",
    "GroupWindow",
    "Kind",
    "Measured",
    "Metric",
    "counts",
    "failures",
    "kind_of",
    "latency",
    "lookup",
    "metric",
    "plain",
    "pools",
    "services_of",
    "takes_argument",
    "written",
]
