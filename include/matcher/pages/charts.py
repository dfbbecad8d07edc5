"""The geometry of the Matcher page's night-by-night charts, for ``templates/chart.html`` to draw.

What a reader needs from them: every night labelled with its date and time (several nights a day
happen), production's value visible from the first night on, and the interval the gate saw never cut
off by the axes (the scale takes in every interval end).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from include.matcher.stages.validation_report import ValidationReport


@dataclass(frozen=True)
class Night:
    x: float
    label: str
    version: str
    candidate: float
    candidate_y: float
    production: float
    production_y: float
    interval: tuple[float, float] | None  # (top y, bottom y)
    interval_text: str
    outcome: str  # promoted / refused / waiting: the dot's colour


@dataclass(frozen=True)
class Chart:
    metric: str
    width: int
    height: int
    left: int
    ticks: list[tuple[float, str]]
    nights: list[Night]
    candidate_points: str
    production_points: str
    rotate_labels: bool


def night_label(created_at: str) -> str:
    """``12-06 02:00``: month-day and UTC time, so two nights of one day are told apart."""
    return f"{created_at[5:10]} {created_at[11:16]}".strip()


def interval_of(report: ValidationReport, metric: str) -> tuple[float, float] | None:
    """Production's value plus the change's interval: where the candidate may truly lie, as the gate saw it."""
    change = (report.decision.evidence or {}).get(metric)
    if not isinstance(change, dict) or "low" not in change:
        return None
    base = report.production_result.metric(metric)
    return base + change["low"], base + change["high"]


def night_chart(
    reports: list[ValidationReport], metric: str, outcomes: dict[str, str], width: int = 720, height: int = 220
) -> Chart | None:
    """The chart of ``metric`` over ``reports`` (oldest first); ``outcomes`` maps a run name to its dot's colour."""
    if not reports:
        return None
    values = []
    for report in reports:
        values += [report.candidate_result.metric(metric), report.production_result.metric(metric)]
        values += list(interval_of(report, metric) or ())
    low = max(0.0, math.floor((min(values) - 0.02) * 20) / 20)
    high = min(1.0, math.ceil((max(values) + 0.02) * 20) / 20)
    if high - low < 0.1:
        low, high = max(0.0, low - 0.05), min(1.0, high + 0.05)
    left = 48
    step = width / max(1, len(reports) - 1)

    def x(i: int) -> float:
        return left + 10 + (i * (step - 20 / max(1, len(reports) - 1)) if len(reports) > 1 else width / 2)

    def y(value: float) -> float:
        return round(height - (value - low) / ((high - low) or 1) * height, 1)

    nights = []
    for i, report in enumerate(reports):
        bounds = interval_of(report, metric)
        nights.append(
            Night(
                x=round(x(i), 1),
                label=night_label(report.created_at),
                version=report.version,
                candidate=report.candidate_result.metric(metric),
                candidate_y=y(report.candidate_result.metric(metric)),
                production=report.production_result.metric(metric),
                production_y=y(report.production_result.metric(metric)),
                interval=(y(bounds[1]), y(bounds[0])) if bounds else None,
                interval_text=f"{bounds[0]:.3f} to {bounds[1]:.3f}" if bounds else "no interval",
                outcome=outcomes.get(report.run_name, "refused"),
            )
        )
    return Chart(
        metric=metric,
        width=width,
        height=height,
        left=left,
        ticks=[(y(low + (high - low) * k / 4), f"{low + (high - low) * k / 4:.2f}") for k in range(5)],
        nights=nights,
        candidate_points=" ".join(f"{n.x},{n.candidate_y}" for n in nights),
        production_points=" ".join(f"{n.x},{n.production_y}" for n in nights),
        rotate_labels=len(nights) > 6,
    )
