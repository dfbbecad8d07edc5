"""The Matcher page: model versions, what is in production, the gate's decisions night by night.

Plain HTML (no JavaScript, an inline SVG chart) built from S3, so it renders wherever the registry
and the run reports are readable; ``plugins/matcher_ui/`` serves it inside the Airflow UI.
"""

from __future__ import annotations

import html
import math
from urllib.parse import quote

from include.matcher.foundations import layout
from include.matcher.foundations.pointers import read_production
from include.matcher.foundations.settings import RETRAINING_DAG_ID, GateConfig, Locations
from include.matcher.foundations.storage import MissingObject, ObjectStore
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


DAG_ID = RETRAINING_DAG_ID
NAV = (
    f'<nav><a href="./">Matcher</a><a href="../dags/{DAG_ID}" target="_top">{DAG_ID} DAG</a>'
    '<a href="../" target="_top">Airflow</a></nav>'
)


def page(title: str, body: str) -> str:
    """A page of the Matcher views, with the links back into Airflow."""
    from include.matcher.stages.report import html_page

    return html_page(title, body, NAV)


def airflow_run_link(report: ValidationReport) -> str:
    """The run's page in the Airflow UI (opened in the whole window, not the Matcher frame)."""
    run_id = report.airflow_run_id
    name = html.escape(report.run_name)
    if not run_id:
        return name
    return f'<a href="../dags/{DAG_ID}/runs/{quote(run_id, safe="")}" target="_top">{name}</a>'


def chart(reports: list[ValidationReport], metric: str, width: int = 640, height: int = 200) -> str:
    """SVG of the candidate's and production's primary metric per night, with axes, ticks and values."""
    if not reports:
        return "<p>No validated run yet.</p>"
    values = [result.metric(metric) for r in reports for result in (r.candidate_result, r.production_result)]
    low = max(0.0, math.floor((min(values) - 0.05) * 10) / 10)
    high = min(1.0, math.ceil((max(values) + 0.05) * 10) / 10)
    left, bottom = 44, 36
    step = width / max(1, len(reports) - 1)

    def x(i: int) -> float:
        return left + (i * step if len(reports) > 1 else width / 2)

    def y(value: float) -> float:
        return height - (value - low) / ((high - low) or 1) * height

    def line(side: str) -> str:
        return " ".join(f"{x(i):.1f},{y(getattr(r, side).metric(metric)):.1f}" for i, r in enumerate(reports))

    ticks = [low + (high - low) * k / 4 for k in range(5)]
    axes = f'<line x1="{left}" y1="0" x2="{left}" y2="{height}" stroke="#333"/>'
    axes += f'<line x1="{left}" y1="{height}" x2="{left + width}" y2="{height}" stroke="#333"/>'
    for tick in ticks:
        axes += f'<line x1="{left - 4}" y1="{y(tick):.1f}" x2="{left + width}" y2="{y(tick):.1f}" stroke="#eee"/>'
        axes += f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">{tick:.2f}</text>'
    dots = ""
    for i, r in enumerate(reports):
        value = r.candidate_result.metric(metric)
        change = (r.decision.evidence or {}).get(metric)
        if change and "low" in change:  # the interval the gate saw: production + the change's interval
            base = r.production_result.metric(metric)
            top, foot = y(min(high, base + change["high"])), y(max(low, base + change["low"]))
            dots += f'<line x1="{x(i):.1f}" y1="{top:.1f}" x2="{x(i):.1f}" y2="{foot:.1f}" stroke="#36c"/>'
        colour = "#2a7" if r.decision.promote else "#c33"
        dots += f'<circle cx="{x(i):.1f}" cy="{y(value):.1f}" r="4" fill="{colour}"><title>{html.escape(r.version)}'
        dots += "</title></circle>"
        dots += f'<text x="{x(i):.1f}" y="{y(value) - 8:.1f}" text-anchor="middle">{value:.3f}</text>'
        dots += f'<text x="{x(i):.1f}" y="{height + 16}" text-anchor="middle">{html.escape(r.created_at[5:10])}</text>'
    svg_size = (
        f'width="{width + left + 30}" height="{height + bottom}" viewBox="0 -14 {width + left + 30} {height + bottom}"'
    )
    return (
        f'<svg {svg_size} font-size="11" role="img" aria-label="{metric} per night">{axes}'
        f'<polyline fill="none" stroke="#999" stroke-dasharray="4" points="{line("production_result")}"/>'
        f'<polyline fill="none" stroke="#36c" stroke-width="2" points="{line("candidate_result")}"/>{dots}</svg>'
        f"<p>{metric} (y) of each night's candidate (blue; green dot: promoted, red: refused; the bar: the "
        "interval the gate saw) and of the production model it was judged against (grey), by night (x, "
        "month-day).</p>"
    )


def side_by_side_table(challenger, ranked: dict[str, list]) -> str:
    """Production's and the latest candidate's top held-out CVs for the same query, row by row."""
    status = "promoted" if challenger.promoted else "refused"
    rows = "".join(
        f"<tr><td>{rank}</td>"
        + "".join(
            f"<td>{hit.score:.3f}</td><td>{html.escape(str(hit.category))}</td><td>{html.escape(hit.id)}</td>"
            for hit in (ranked["production"][rank - 1], ranked["candidate"][rank - 1])
        )
        + "</tr>"
        for rank in range(1, min(len(ranked["production"]), len(ranked["candidate"])) + 1)
    )
    head = (
        f'<tr><th></th><th colspan="3">production ({html.escape(challenger.production_version or "base model")})</th>'
        f'<th colspan="3">candidate {html.escape(challenger.version)} ({status})</th></tr>'
        "<tr><th>rank</th>" + "<th>score</th><th>category</th><th>held-out CV</th>" * 2 + "</tr>"
    )
    return (
        f"<h3>Production and the latest candidate, side by side</h3><p>Both models rank the same CVs: the "
        f"{html.escape(challenger.run.rsplit('/', 1)[-1])} night's held-out CVs, which neither trained on. "
        f"Gate: {html.escape(challenger.reason)}</p><table>{head}{rows}</table>"
    )


def side_by_side_unavailable(challenger) -> str:
    return (
        '<h3>Production and the latest candidate, side by side</h3><p class="refuse">Unavailable: the '
        f"{html.escape(challenger.run.rsplit('/', 1)[-1])} night's held-out vectors are missing or unreadable.</p>"
    )


def search_box(query: str | None, matches: list | None, error: str | None, comparison: str = "") -> str:
    """The "try a job description" form and, after a query, production's top candidates for it
    (and ``comparison``, the side-by-side table when a newer candidate exists)."""
    # POST: a query (a confidential requisition, a pasted CV) must reach neither the server's access
    # log nor the browser's history, as a GET's URL does.
    form = (
        '<form method="post" action="./"><textarea name="q" rows="4" cols="90" '
        'placeholder="Paste a job description: the stored CVs that fit it best are listed from production">'
        f'{html.escape(query or "")}</textarea><br><button type="submit">Find candidates</button></form>'
    )
    if error:
        return form + f'<p class="refuse">{html.escape(error)}</p>{comparison}'
    if matches is None:
        return form
    if not matches:
        return form + f"<p>No stored candidate.</p>{comparison}"
    rows = "".join(
        f"<tr><td>{rank}</td><td>{m.score:.3f}</td><td>{html.escape(str(m.category))}</td><td>{html.escape(m.id)}</td></tr>"
        for rank, m in enumerate(matches, 1)
    )
    head = "<tr><th>rank</th><th>score</th><th>category</th><th>candidate (source key)</th></tr>"
    return (
        form
        + f"<p>Production ({html.escape(matches[0].model_version or '-')}), all stored CVs:</p>"
        + f"<table>{head}{rows}</table>{comparison}"
    )


def render(
    storage: ObjectStore,
    locations: Locations,
    report_link=lambda run: f"report.html?run={quote(run)}",
    json_link=lambda run: f"report?run={quote(run)}",
    search: str = "",
) -> str:
    metric = GateConfig().primary_metric
    production = read_production(storage, locations.registry)
    versions = list_versions(storage, locations.registry)
    reports, unreadable = run_reports(storage, locations)
    live = production["version"] if production else None
    version_rows = "".join(
        f"<tr><td>{html.escape(v['version'])}{' <strong>(production)</strong>' if v['version'] == live else ''}</td>"
        f"<td>{html.escape(v['promoted_at'][:19])}</td>"
        + "".join(f"<td>{v['metrics'].get(name, 0):.3f}</td>" for name in ("accuracy@1", "mrr@10", "ndcg@10"))
        + f"<td>{html.escape(v.get('previous') or '-')}</td></tr>"
        for v in reversed(versions)
    )
    run_rows = "".join(
        f"<tr><td>{airflow_run_link(r)}</td><td>{'promoted' if r.decision.promote else 'refused'}</td>"
        f"<td>{r.candidate_result.metric('mrr@10'):.3f}</td><td>{html.escape(audit_cell(r.bias_audit))}</td>"
        f"<td>{html.escape(r.decision.reason)}</td><td>{html.escape(approval_summary(r.approval))}</td>"
        f'<td><a href="{html.escape(report_link(r.run_name))}">report</a> '
        f'(<a href="{html.escape(json_link(r.run_name))}">json</a>)</td></tr>'
        for r in reversed(reports)
    ) + "".join(
        f"<tr><td>{html.escape(run)}</td><td>unreadable</td>"
        "<td>-</td><td>-</td><td>its validation report is not one this page can read</td><td>-</td><td>-</td></tr>"
        for run in unreadable
    )
    in_production = html.escape(live or "none yet") + (f" ({html.escape(production['uri'])})" if production else "")
    if production_trained_on_erased(locations, storage):
        in_production += (
            "</strong> <em>trained on data erased since: the next night retrains without it; promote a clean "
            "model to replace it</em><strong>"
        )
    version_head = (
        "<tr><th>version</th><th>promoted</th><th>accuracy@1</th><th>mrr@10</th><th>ndcg@10</th><th>replaced</th></tr>"
    )
    return page(
        "Matcher",
        f"<h1>Matcher</h1><p>In production: <strong>{in_production}</strong></p>"
        f"<h2>Try a job description</h2>{search}"
        f"<h2>{metric} over nights</h2>{chart(reports, metric)}"
        "<h2>job &rarr; CV MAP@10 over nights (the recruiter's search, guarded)</h2>"
        f"{chart(reports, 'job_to_cv_map@10')}"
        f"<h2>Model versions</h2><table>{version_head}{version_rows}</table>"
        "<h2>Gate decisions</h2><table><tr><th>run (Airflow)</th><th>decision</th><th>MRR@10</th>"
        "<th>lowest impact ratio (CI), flip rate</th><th>why</th><th>approval</th><th>report</th></tr>"
        f"{run_rows}</table>",
    )


def audit_cell(audit: dict | None) -> str:
    """The night's bias audit headline, for the decisions table."""
    if not audit:
        return "not run"
    lowest, flips = audit["candidate"]["lowest_impact_ratio"], audit["candidate"]["flip_rate"]
    return f"{lowest['value']:.3f} ({lowest['low']:.3f} to {lowest['high']:.3f}), {flips['value']:.3f}"


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

    return render_report(report(storage, locations, run), nav=NAV)


def unknown_report_page(run: str) -> str:
    return page(
        "No report",
        f"<h1>No readable validation report for run {html.escape(run)}</h1>"
        '<p>The run may not have reached validation, or its report is damaged. <a href="./">Back to the Matcher '
        "page</a>.</p>",
    )


def _report_uri(locations: Locations, run: str) -> str:
    return layout.Run(locations.run_folder_uri(run)).candidate.validation_report
