"""The reports' charts, drawn with matplotlib into SVG text that the pages hold inline.

One figure per timeline: stacked panels sharing the time axis (seconds from the first
phase's start). Every drawn series carries an id (``series-<panel>-<name>``), every fault
band ``fault-<n>`` and every phase line ``phase-<n>``, so that a page, and a test reading
it in a browser, can find them. No pyplot: figures are plain objects, nothing global is
switched, and a report can be drawn in any thread.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from matplotlib import rc_context
from matplotlib.axes import Axes
from matplotlib.figure import Figure

#: one colour per group, in the order the groups are drawn (matplotlib's tab10)
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")  # fmt: skip
FAULT_COLOUR = "#d62728"
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True)
class Band:
    """A fault's window on the timeline, in seconds from the origin: applied, its effect
    first seen, reverted, served again (None when not seen)."""

    label: str
    applied: float
    reverted: float
    effect_seen: float | None = None
    served_again: float | None = None


@dataclass(frozen=True)
class Run:
    """What one run's timeline draws: its series (``report.series``), the server's samples
    and the phases and faults, every time in seconds from the origin."""

    series: dict[str, Any]
    server: Sequence[dict[str, Any]] = ()
    phases: Sequence[tuple[str, float]] = ()
    bands: Sequence[Band] = ()


def run_of(journal: dict[str, Any]) -> Run:
    """A journal's timeline, its times made relative to its series' origin."""
    series = journal.get("series") or {}
    phases = journal.get("timeline") or []
    origin = series.get("origin", phases[0]["start"] if phases else journal["started_at"])
    bands = [
        Band(
            label=fault["description"],
            applied=fault["applied_at"] - origin,
            reverted=(fault.get("reverted_at") or journal["ended_at"]) - origin,
            effect_seen=_minus(fault.get("effect_seen_at"), origin),
            served_again=_minus(fault.get("served_again_at"), origin),
        )
        for fault in journal.get("faults") or []
        if fault.get("applied_at") is not None
    ]
    server = [{**entry, "at": entry["at"] - origin} for entry in journal.get("server") or []]
    return Run(
        series=series,
        server=server,
        phases=[(phase["name"], phase["start"] - origin) for phase in phases],
        bands=bands,
    )


def _minus(value: float | None, origin: float) -> float | None:
    return None if value is None else value - origin


def element_id(*parts: str) -> str:
    """An id for an SVG element: the parts joined by ``-``, anything else made ``_``."""
    return "-".join(_UNSAFE.sub("_", part) for part in parts)


def timeline_svg(run: Run, *, name: str, server: bool = True) -> str:
    """The run's timeline: throughput, latency (p50 dashed, p99 solid), error rate, and with
    ``server`` the pools (in use solid, waiting dashed) and PostgreSQL's connections per
    application; fault bands and phase lines across every panel."""
    panels = ["throughput", "latency", "errors"] + (["pools", "connections"] if server else [])
    with _style(name):
        figure, axes = _panels(len(panels))
        # one colour per service in every panel: its requests, its pool, its connections
        colours = _colours({*run.series.get("groups", {}), *_names(run.server, "pools"),
                            *_names(run.server, "connections")})  # fmt: skip
        for panel, ax in zip(panels, axes, strict=True):
            if panel == "pools":
                _pools(ax, run.server, colours)
            elif panel == "connections":
                _connections(ax, run.server, colours)
            else:
                _requests(ax, panel, run.series, colours)
        _marks(axes, run)
        return _svg(figure)


def compare_svg(a: Run, b: Run, *, name: str, labels: tuple[str, str]) -> str:
    """Two runs overlaid: throughput, latency (p99) and error rate per group, the first run
    solid and the second dashed, each run's fault windows as bands (the second's hatched)."""
    panels = ["throughput", "latency", "errors"]
    with _style(name):
        figure, axes = _panels(len(panels))
        groups = _colours({**b.series.get("groups", {}), **a.series.get("groups", {})})
        for panel, ax in zip(panels, axes, strict=True):
            for run, suffix, style in ((a, "a", "-"), (b, "b", "--")):
                _requests(ax, panel, run.series, groups, suffix=suffix, style=style,
                          label=labels[0 if suffix == "a" else 1])  # fmt: skip
        _marks(axes, a)
        _marks(axes, b, hatched=True, first_band=len(a.bands))
        return _svg(figure)


def _style(name: str) -> Any:
    # Text stays text (a tenth of the size of glyphs drawn as paths); the salt keeps the
    # generated ids of two figures on one page apart.
    return rc_context({"svg.fonttype": "none", "svg.hashsalt": name, "font.size": 8,
                       "axes.titlesize": 9, "legend.fontsize": 7})  # fmt: skip


def _panels(count: int) -> tuple[Figure, list[Axes]]:
    figure = Figure(figsize=(10, 1.9 * count + 0.4), layout="constrained")
    axes = figure.subplots(count, 1, sharex=True, squeeze=False)[:, 0].tolist()
    axes[-1].set_xlabel("seconds from the first phase's start")
    return figure, axes


def _colours(groups: Iterable[str]) -> dict[str, str]:
    return {group: COLOURS[n % len(COLOURS)] for n, group in enumerate(sorted(groups))}


_TITLES = {
    "throughput": ("requests per second", "req/s"),
    "latency": ("latency: p99 (solid) and p50 (dotted)", "ms"),
    "errors": ("error rate", "%"),
    "pools": ("pool connections in use (solid) and callers waiting (dashed)", "connections"),
    "connections": ("PostgreSQL connections per application", "connections"),
}


def _requests(
    ax: Axes,
    panel: str,
    series: dict[str, Any],
    colours: dict[str, str],
    *,
    suffix: str = "",
    style: str = "-",
    label: str = "",
) -> None:
    title, unit = _TITLES[panel]
    ax.set_title(title if not suffix else title.split(":")[0] + ": p99", loc="left")
    ax.set_ylabel(unit)
    size = series.get("bucket_s", 1.0)
    middles = [t + size / 2 for t in series.get("t", [])]
    for group, data in series.get("groups", {}).items():
        colour = colours[group]
        ids = [element_id("series", panel, group, *([suffix] if suffix else []))]
        text = f"{group} ({label})" if label else group
        if panel == "throughput":
            lines = [ax.plot(middles, [c / size for c in data["count"]], style, color=colour,
                             label=text)]  # fmt: skip
        elif panel == "errors":
            rates = [None if c == 0 else 100.0 * f / c for c, f in zip(data["count"],
                     data["failures"], strict=True)]  # fmt: skip
            lines = [ax.plot(middles, _nan(rates), style, color=colour, label=text)]
        else:
            lines = [ax.plot(middles, _nan(data["p99"]), style, color=colour, label=text)]
            if not suffix:
                lines.append(ax.plot(middles, _nan(data["p50"]), ":", color=colour))
                ids.append(element_id("series", "p50", group))
        for line, gid in zip(lines, ids, strict=True):
            line[0].set_gid(gid)
    if panel == "latency" and series.get("groups"):
        ax.set_yscale("log")
    if panel == "throughput" and series.get("groups"):
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))


def _names(server: Sequence[dict[str, Any]], figure: str) -> list[str]:
    """The names (services, applications) the server's samples hold ``figure`` for."""
    return sorted({name for entry in server for name in entry.get(figure, {})})


def _pools(ax: Axes, server: Sequence[dict[str, Any]], colours: dict[str, str]) -> None:
    ax.set_title(_TITLES["pools"][0], loc="left")
    ax.set_ylabel(_TITLES["pools"][1])
    services = _names(server, "pools")
    for service in services:
        at = [e["at"] for e in server if service in e.get("pools", {})]
        figures = [e["pools"][service] for e in server if service in e.get("pools", {})]
        for figure, style in (("in_use", "-"), ("waiting", "--")):
            label = service if style == "-" else None
            (line,) = ax.plot(at, [f.get(figure, 0.0) for f in figures], style,
                              color=colours[service], label=label)  # fmt: skip
            line.set_gid(element_id("series", "pool", figure.replace("_", "-"), service))
    if services:
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))


def _connections(ax: Axes, server: Sequence[dict[str, Any]], colours: dict[str, str]) -> None:
    ax.set_title(_TITLES["connections"][0], loc="left")
    ax.set_ylabel(_TITLES["connections"][1])
    names = _names(server, "connections")
    for name in names:
        at = [e["at"] for e in server if "connections" in e]
        counts = [sum(e["connections"].get(name, {}).values()) for e in server
                  if "connections" in e]  # fmt: skip
        (line,) = ax.plot(at, counts, "-", color=colours[name], label=name)
        line.set_gid(element_id("series", "connections", name))
    if names:
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))


def _marks(axes: Sequence[Axes], run: Run, *, hatched: bool = False, first_band: int = 0) -> None:
    """Fault windows as bands (applied to reverted; a dotted line where the effect was first
    seen, a dash-dot one where the target was served again) and phase starts as lines."""
    for n, band in enumerate(run.bands, start=first_band):
        for row, ax in enumerate(axes):
            span = ax.axvspan(band.applied, band.reverted, color=FAULT_COLOUR,
                              alpha=0.08 if hatched else 0.13, hatch="//" if hatched else None,
                              linewidth=0)  # fmt: skip
            if row == 0:
                span.set_gid(element_id("fault", str(n)))
            for at, style in ((band.effect_seen, ":"), (band.served_again, "-.")):
                if at is not None:
                    ax.axvline(at, color=FAULT_COLOUR, linestyle=style, linewidth=0.8)
    if hatched:
        return
    for n, (name, start) in enumerate(run.phases):
        for row, ax in enumerate(axes):
            line = ax.axvline(start, color="#555555", linewidth=0.8)
            if row == 0:
                line.set_gid(element_id("phase", str(n)))
                ax.annotate(name, (start, 1.0), xycoords=("data", "axes fraction"),
                            xytext=(2, -2), textcoords="offset points", va="top",
                            fontsize=7, color="#555555")  # fmt: skip


def _nan(values: Sequence[float | None]) -> list[float]:
    """None as NaN: a gap in the line."""
    return [float("nan") if v is None else v for v in values]


def _svg(figure: Figure) -> str:
    out = io.StringIO()
    figure.savefig(out, format="svg", metadata={"Date": None, "Creator": None})
    text = out.getvalue()
    return text[text.index("<svg") :]  # inline: no XML declaration, no DOCTYPE
