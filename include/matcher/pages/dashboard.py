"""The Matcher page: model versions, what is in production, the gate's decisions night by night.

HTML from ``templates/`` (autoescaped) with inline SVG charts, built from S3, so it renders wherever
the registry and the run reports are readable; ``plugins/matcher_ui/`` serves it inside the Airflow UI.
"""

from __future__ import annotations

from dataclasses import dataclass

from include.matcher.foundations import layout
from include.matcher.foundations.pointers import read_production
from include.matcher.foundations.settings import GateConfig, Locations
from include.matcher.foundations.storage import MissingObject, ObjectStore
from include.matcher.foundations.templating import render_template
from include.matcher.pages.charts import night_chart
from include.matcher.pages.night_state import NightState, night_state
from include.matcher.stages.approval import approval_summary
from include.matcher.stages.erasure import production_trained_on_erased
from include.matcher.stages.registry import list_versions
from include.matcher.stages.validation_report import MAX_REPORT_BYTES, UnreadableReport, ValidationReport, read_report


def run_reports(storage: ObjectStore, locations: Locations) -> tuple[list[ValidationReport], list[str]]:
    """Every run's validation report (promoted or not), oldest first; and the runs whose report is unreadable.

    Anyone who can write the work bucket can put any bytes there: a report that is not the JSON
    validation writes (:mod:`include.matcher.stages.validation_report`) is listed as unreadable, never allowed
    to take the page down.
    """
    root = layout.runs(locations.work)
    sizes = {info.uri: info.size for info in storage.list(root)}
    names = sorted({uri[len(root) + 1 :].split("/", 1)[0] for uri in sizes})
    reports, unreadable = [], []
    for name in names:
        report_uri = layout.Run(f"{root}/{name}").candidate.validation_report
        if report_uri not in sizes:
            continue
        try:
            locations.run_folder_uri(name)  # a folder no run writes (``...``, ``ü``) holds no report of ours
            if sizes[report_uri] > MAX_REPORT_BYTES:
                raise UnreadableReport("too large")
            reports.append(read_report(storage.get_bytes(report_uri)))
        except (ValueError, MissingObject):
            unreadable.append(name)
    return sorted(reports, key=lambda report: report.created_at), unreadable


WEAK_SCORE = 0.3  # a best cosine below this is a weak fit for MiniLM-sized models: said so, not shown as a match
IMPACT_RATIO_FLOOR = 0.8  # the four-fifths rule: an impact ratio below it is marked wherever it is shown


@dataclass(frozen=True)
class SideBySideView:
    """What ``side_by_side.html`` shows: the challenger, and its rows (``ranked`` None: vectors unreadable)."""

    challenger: object
    ranked: dict | None = None

    @property
    def rows(self) -> list[dict]:
        from include.matcher.serving.comparison import rank_changes

        left, right = self.ranked["production"], self.ranked["candidate"]
        changes = rank_changes(left, right)
        return [
            {"rank": rank, "left": a, "right": b, **changes[rank - 1]}
            for rank, (a, b) in enumerate(zip(left, right, strict=False), 1)
        ]


@dataclass(frozen=True)
class Night:
    report: ValidationReport
    state: NightState
    audit: str
    audit_flagged: bool
    approval: str


def registry_view(storage: ObjectStore, locations: Locations) -> tuple[dict | None, dict[str, dict], list[dict]]:
    """(production pointer, every version's entry by name, the rollbacks): what a night's state needs."""
    from include.matcher.stages.registry import list_rollbacks

    versions = {entry.version: entry for entry in list_versions(storage, locations.registry)}
    return read_production(storage, locations.registry), versions, list_rollbacks(storage, locations.registry)


def nights(reports: list[ValidationReport], registry: tuple[dict | None, dict[str, dict], list[dict]]) -> list[Night]:
    """Every night, newest first, with what became of it (``registry``: :func:`registry_view`)."""
    production, versions, rollbacks = registry
    return [
        Night(
            report=r,
            state=night_state(r, versions, production, rollbacks),
            audit=audit_cell(r.bias_audit),
            audit_flagged=audit_flagged(r.bias_audit),
            approval=approval_summary(r.approval),
        )
        for r in reversed(reports)
    ]


def render(
    storage: ObjectStore,
    locations: Locations,
    *,
    query: str | None = None,
    matches: list | None = None,
    error: str | None = None,
    comparison: SideBySideView | None = None,
    model_loaded: bool = True,
    seconds: float | None = None,
) -> str:
    """The Matcher page: production, the search (and its results, when ``matches`` is given), the
    nights' charts, the versions, and every night's gate decision with what became of it."""
    metric = GateConfig().primary_metric
    registry = registry_view(storage, locations)  # read once: the states, the versions table, production
    production, versions = registry[0], registry[1]
    reports, unreadable = run_reports(storage, locations)
    listed = nights(reports, registry)
    outcomes = {night.report.run_name: night.state.outcome for night in listed}
    return render_template(
        "matcher.html",
        title="Matcher",
        metric=metric,
        production=production,
        live=production.version if production else None,
        trained_on_erased=production_trained_on_erased(locations, storage),
        versions=list(reversed(versions.values())),
        nights=listed,
        waiting=[(n.report, n.state) for n in listed if n.state.action],
        unreadable=unreadable,
        primary_chart=night_chart(reports, metric, outcomes),
        map_chart=night_chart(reports, "job_to_cv_map@10", outcomes),
        query=query,
        matches=matches,
        error=error,
        comparison=comparison,
        model_loaded=model_loaded,
        seconds=seconds,
        weak_score=WEAK_SCORE,
    )


def audit_cell(audit: dict | None) -> str:
    """The night's bias audit headline, for the decisions table."""
    if not audit:
        return "not run"
    lowest, flips = audit["candidate"]["lowest_impact_ratio"], audit["candidate"]["flip_rate"]
    cell = f"{lowest['value']:.3f} ({lowest['low']:.3f} to {lowest['high']:.3f}), {flips['value']:.3f}"
    alone = (audit.get("model_alone") or {}).get("candidate")
    if alone and audit.get("reads") != "model alone":
        cell += f"; model alone: gap {alone['largest_win_rate_gap']['value']:.3f}"
    return cell


def audit_flagged(audit: dict | None) -> bool:
    """Whether the night's lowest impact ratio is below the four-fifths rule's 0.8."""
    return bool(audit) and audit["candidate"]["lowest_impact_ratio"]["value"] < IMPACT_RATIO_FLOOR


def report(storage: ObjectStore, locations: Locations, run: str) -> ValidationReport:
    """The validation report of one run (its folder name under ``<work>/runs/``), checked
    (:class:`UnreadableReport` if it is not one validate wrote)."""
    return read_report(storage.get_bytes(_report_uri(locations, run)))


def report_html(storage: ObjectStore, locations: Locations, run: str) -> str:
    """The human-readable validation report of one run, rendered (and escaped) from its JSON now.

    The HTML copy stored beside the report is for people reading the bucket; serving stored HTML
    would let whoever can write the bucket run script in the Airflow origin.
    """
    from include.matcher.stages.report import render_report

    found = report(storage, locations, run)
    production, versions, rollbacks = registry_view(storage, locations)
    return render_report(found, state=night_state(found, versions, production, rollbacks), served=True)


def message_page(title: str, text: str, status: str = "") -> str:
    """A short page that says one thing (an unknown run, a missing version), with the way back."""
    return render_template("message.html", title=title, text=text, status=status)


def unknown_report_page(run: str) -> str:
    return message_page(
        f"No readable validation report for run {run}",
        "The run may not have reached validation, or its report is damaged.",
    )


def _report_uri(locations: Locations, run: str) -> str:
    return layout.Run(locations.run_folder_uri(run)).candidate.validation_report
