"""The validation report for people: an HTML page (per-category chart, confusion matrix) and the
evaluation section of the model card, both rendered from ``validation_report.json``.

Plain HTML with inline SVG: no JavaScript, no external assets, so it opens from S3, the Matcher
page or a mail attachment alike.
"""

from __future__ import annotations

import html

from include.matcher.foundations.metrics import METRICS
from include.matcher.stages.validation_report import Decision, ModelResult, ValidationReport


def _number(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def model_rows(report: ValidationReport) -> list[tuple[str, ModelResult]]:
    """(label, result) for the candidate, production and the baselines, in that order."""
    rows = [
        ("candidate", report.candidate_result),
        (f"production ({report.production_label})", report.production_result),
    ]
    baselines = report.baselines
    if "base_zero_shot" in baselines:
        rows.append(("base model, zero-shot", baselines["base_zero_shot"]))
    if "tfidf_logreg" in baselines:
        rows.append(("TF-IDF + logistic regression", baselines["tfidf_logreg"]))
    return rows


def metrics_table(report: ValidationReport) -> str:
    head = "".join(f"<th>{html.escape(name)}</th>" for name in METRICS) + "<th>accuracy@1 with title</th>"
    body = ""
    for label, result in model_rows(report):
        metrics, titled = result.metrics, result.titled_metrics
        cells = "".join(f"<td>{metrics[name]:.3f}</td>" if name in metrics else "<td>-</td>" for name in METRICS)
        body += f"<tr><th>{html.escape(label)}</th>{cells}<td>{_number(titled.get('accuracy@1'))}</td></tr>"
    return f"<table><tr><th>model</th>{head}</tr>{body}</table>"


def category_chart(report: ValidationReport, metric: str) -> str:
    """Horizontal bars per category: candidate (blue) against production (grey)."""
    candidate = report.candidate_result.per_category
    production = report.production_result.per_category
    categories = sorted(candidate)
    if not categories:
        return "<p>No held-out CVs.</p>"
    row, label_width, bar_width = 22, 210, 360
    height = row * len(categories) + 30
    parts = []
    for i, category in enumerate(categories):
        y = 20 + i * row
        new = candidate[category].get(metric, 0.0)
        old = production.get(category, {}).get(metric, 0.0)
        parts.append(
            f'<text x="{label_width - 6}" y="{y + 13}" text-anchor="end">{html.escape(category)} '
            f"({candidate[category].get('count', 0)})</text>"
            f'<rect x="{label_width}" y="{y}" width="{old * bar_width:.1f}" height="8" fill="#bbb"><title>production '
            f"{old:.3f}</title></rect>"
            f'<rect x="{label_width}" y="{y + 9}" width="{new * bar_width:.1f}" height="8" '
            f'fill="#36c"><title>candidate {new:.3f}</title></rect>'
            f'<text x="{label_width + bar_width + 8}" y="{y + 13}">{new:.2f} ({new - old:+.2f})</text>'
        )
    axis = (
        f'<text x="{label_width}" y="12">0</text><text x="{label_width + bar_width}" y="12" text-anchor="end">1</text>'
    )
    return (
        f'<svg class="category-chart" width="{label_width + bar_width + 90}" height="{height}" font-size="11" '
        f'role="img" aria-label="{metric} per category">{axis}{"".join(parts)}</svg>'
        f"<p>{html.escape(metric)} per category (held-out CVs in brackets): candidate blue, production grey.</p>"
    )


def confusion_picture(confusion: dict) -> str:
    """The candidate's confusion matrix as a heat map: rows the true category, columns the top-ranked one."""
    labels, matrix = confusion.get("labels", []), confusion.get("matrix", [])
    if "top_confusions" in confusion:
        return top_confusions_table(confusion)
    if not matrix:
        return "<p>No held-out CVs.</p>"
    # Cells and margins sized for the longest label, so 24 categories stay legible.
    cell = 26
    margin = 20 + int(6.5 * max((len(label) for label in labels), default=4))
    size = cell * len(labels)
    parts = []
    for r, row in enumerate(matrix):
        total = max(1, sum(row))
        parts.append(
            f'<text x="{margin - 4}" y="{margin + r * cell + 13}" text-anchor="end">{html.escape(labels[r])}</text>'
        )
        for c, count in enumerate(row):
            share = count / total
            colour = (
                f"rgb({255 - int(200 * share)},{255 - int(150 * share)},255)"
                if r == c
                else f"rgb(255,{255 - int(200 * share)},{255 - int(200 * share)})"
            )
            parts.append(
                f'<rect x="{margin + c * cell}" y="{margin + r * cell}" width="{cell - 1}" height="{cell - 1}" '
                f'fill="{colour}">'
                f"<title>{html.escape(labels[r])} ranked as {html.escape(labels[c])}: {count}</title></rect>"
            )
            if count:
                parts.append(
                    f'<text x="{margin + c * cell + cell / 2 - 0.5}" y="{margin + r * cell + 17}" '
                    f'text-anchor="middle" font-size="11">{count}</text>'
                )
    for c, label in enumerate(labels):
        x = margin + c * cell + 16
        parts.append(f'<text transform="translate({x},{margin - 4}) rotate(-60)">{html.escape(label)}</text>')
    return (
        f'<svg class="confusion-matrix" width="{margin + size + 40}" height="{margin + size + 10}" font-size="11" '
        f'role="img" aria-label="confusion matrix">{"".join(parts)}</svg>'
        "<p>Rows: true category; columns: the category the candidate ranks first (titles stripped). Blue diagonal: "
        "right; red: wrong.</p>"
    )


def top_confusions_table(confusion: dict) -> str:
    """The largest confusions, for a jobs file with too many categories for a matrix."""
    rows = "".join(
        f"<tr><td>{html.escape(c['true'])}</td><td>{html.escape(c['predicted'])}</td><td>{c['count']}</td></tr>"
        for c in confusion["top_confusions"]
    )
    return (
        f"<p>{confusion.get('categories', '?')} categories: too many for a matrix, so the "
        f"{len(confusion['top_confusions'])} largest confusions (held-out CVs whose top-ranked category is not "
        "their own).</p><table><tr><th>true category</th><th>ranked first</th><th>CVs</th></tr>"
        f"{rows}</table>"
    )


STYLE = (
    "body{font-family:sans-serif;margin:1.5rem;max-width:1200px}table{border-collapse:collapse}"
    "td,th{border:1px solid #ccc;padding:3px 7px;text-align:left}nav a{margin-right:1rem}"
    ".promote{color:#171}.refuse{color:#a11}"
)


def html_page(title: str, body: str, nav: str = "") -> str:
    """A whole page: the shared style, ``nav`` (links, when served inside Airflow) and ``body``."""
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{STYLE}</style></head><body>{nav}{body}</body></html>"
    )


def evidence_table(decision: Decision) -> str:
    """Candidate vs production with the interval of the change, overall, job -> CV and per category."""
    evidence = decision.evidence
    if not evidence:
        return "<p>No interval: the candidate was refused before it was compared.</p>"
    metric, confidence = decision.primary_metric, evidence.get("confidence", 0)
    interval_head = f"{confidence:.0%} interval of the change" if confidence else "interval (bootstrap off)"

    def row(name: str, change: dict | None, count: str = "") -> str:
        if change is None:
            return ""
        if "status" in change:
            return (
                f"<tr><td>{html.escape(name)}</td><td>{count}</td>"
                f'<td colspan="4">{html.escape(change["status"])}</td></tr>'
            )
        return (
            f"<tr><td>{html.escape(name)}</td><td>{count}</td><td>{change['candidate']:.3f}</td>"
            f"<td>{change['production']:.3f}</td><td>{change['difference']:+.3f}</td>"
            f"<td>{change['low']:+.3f} to {change['high']:+.3f}</td></tr>"
        )

    rows = row(f"{metric} (gate)", evidence.get(metric), str(evidence.get("held_out", ""))) + row(
        "job -> CV MAP@10 (guarded)", evidence.get("job_to_cv_map@10")
    )
    rows += "".join(
        row(f"{metric}: {category}", change, str(change["count"]))
        for category, change in sorted(evidence.get("per_category", {}).items())
    )
    return (
        "<table><tr><th>statistic</th><th>held-out CVs</th><th>candidate</th><th>production</th><th>change</th>"
        f"<th>{interval_head}</th></tr>{rows}</table>"
        f"<p>Paired bootstrap over the held-out CVs ({evidence.get('resamples', 0)} resamples). Decided by: "
        f"{html.escape(', '.join(decision.decided_by))}.</p>"
    )


def audit_headline(audit: dict | None) -> str:
    """One line: the candidate's lowest impact ratio with its interval, and its flip rate."""
    if not audit:
        return "bias audit: not run"
    lowest, flips = audit["candidate"]["lowest_impact_ratio"], audit["candidate"]["flip_rate"]
    return (
        f"bias audit: lowest impact ratio {lowest['value']:.3f} (CI {lowest['low']:.3f} to {lowest['high']:.3f}), "
        f"flip rate {flips['value']:.3f} ({audit['cvs']} CVs x {audit['names']} names)"
    )


def audit_rows(audit: dict) -> list[tuple[str, list[str]]]:
    """(group, cells) of the LL144-style table for the candidate, production beside it."""
    rows = []
    for group, row in audit["candidate"]["groups"].items():
        old = (audit.get("production") or {}).get("groups", {}).get(group)
        rows.append(
            (
                group,
                [
                    f"{row['scoring_rate']:.3f}",
                    f"{row['selection_rate']:.3f}",
                    f"{row['impact_ratio']:.3f} ({row['impact_ratio_low']:.3f} to {row['impact_ratio_high']:.3f})",
                    f"{row['selection_impact_ratio']:.3f}",
                    "-" if old is None else f"{old['impact_ratio']:.3f}",
                ],
            )
        )
    return rows


AUDIT_HEAD = ["group", "scoring rate", "selection rate", "impact ratio (CI)", "selection impact ratio", "production"]


def audit_table(audit: dict | None) -> str:
    """The bias audit for people: per group, then the name-sensitivity figures against production."""
    if not audit:
        return "<p>No bias audit: the candidate was refused before it, or the audit is off.</p>"
    head = "".join(f"<th>{html.escape(h)}</th>" for h in AUDIT_HEAD)
    body = "".join(
        f"<tr><th>{html.escape(group)}</th>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>"
        for group, cells in audit_rows(audit)
    )
    figures = ""
    for name in ("flip_rate", "name_sensitivity", "largest_win_rate_gap"):
        new = audit["candidate"][name]
        old = (audit.get("production") or {}).get(name)
        figures += (
            f"<tr><td>{name.replace('_', ' ')}</td><td>{new['value']:.3f} ({new['low']:.3f} to {new['high']:.3f})</td>"
            f"<td>{'-' if old is None else format(old['value'], '.3f')}</td></tr>"
        )
    wins = ", ".join(f"{html.escape(pair)} {rate:.3f}" for pair, rate in audit["candidate"]["win_rates"].items())
    return (
        f"<p>{html.escape(audit_headline(audit))}. Each audited CV (held-out, title stripped) scored against every "
        "job with a name line put at its top, once per name; rates are averaged over jobs; intervals are "
        f"{audit['confidence']:.0%} bootstrap intervals over the CVs.</p>"
        f"<table><tr>{head}</tr>{body}</table>"
        "<table><tr><th>name sensitivity</th><th>candidate (CI)</th><th>production</th></tr>"
        f"{figures}</table><p>Paired win rates (0.5: the name does not matter): {wins}.</p>"
    )


def render_report(report: ValidationReport, nav: str = "") -> str:
    decision = report.decision
    metric = decision.primary_metric
    verdict = "PROMOTE" if decision.promote else "KEEP PRODUCTION"
    training = report.training
    hyper = ", ".join(f"{k}={v}" for k, v in sorted(training.items())) if training else "-"
    version = html.escape(report.version)
    outcome = "promote" if decision.promote else "refuse"
    body = (
        f"<h1>Validation report: {version}</h1>"
        f'<p class="{outcome}"><strong>{verdict}</strong>: {html.escape(decision.reason)}</p>'
        f"<p>Run {html.escape(report.run)}; {report.held_out_count} held-out CVs (test split), first line "
        f"(job title) stripped for the primary numbers; data hash <code>{html.escape(str(report.data_hash))}"
        "</code>.</p>"
        f"<h2>Metrics (titles stripped) and baselines</h2>{metrics_table(report)}"
        f"<h2>Candidate vs production, with intervals</h2>{evidence_table(decision)}"
        f"<h2>Bias audit (names on the same CV)</h2>{audit_table(report.bias_audit)}"
        f"<h2>{html.escape(metric)} per category</h2>{category_chart(report, metric)}"
        "<h2>Confusion matrix of the candidate</h2>"
        f"{confusion_picture(report.candidate_result.confusion)}"
        f"<h2>Training</h2><p>{html.escape(hyper)}</p>"
    )
    return html_page(f"Validation report {report.version}", body, nav)


INTENDED_USE = """### Intended use and limits

- **For**: ranking stored CVs for a job description (and jobs for a CV) so that a recruiter reads the
  likeliest fits first, with a person deciding. Under the EU AI Act this is a high-risk system (Annex III
  4(a)). The name-swap audit above measures the rates and impact ratios NYC Local Law 144 asks about, on
  every candidate before promotion; it is not the independent audit that law requires.
- **Not for**: the sole basis of a hiring, rejection or pay decision; scoring people on anything but the
  text of their CV; CVs in other languages than English.
- **Known limits**: reads the first 256 tokens of a CV (the rest is cut); knows only the categories it
  was trained on (above); the bias audit uses names as the one proxy for perceived race and sex (no
  demographic data is used or stored), so it cannot show bias carried by other words."""


def model_card_section(report: ValidationReport) -> str:
    """Markdown for the model card: metrics beside the baselines, data hash, hyperparameters."""
    lines = [
        "## Matcher evaluation",
        "",
        f"Held-out test split of {report.held_out_count} CVs, job titles (first line) stripped; "
        f"validated {report.created_at[:19]} in run `{report.run}`.",
        "",
        "| model | " + " | ".join(METRICS) + " | accuracy@1 with title |",
        "| --- |" + " --- |" * (len(METRICS) + 1),
    ]
    for label, result in model_rows(report):
        metrics, titled = result.metrics, result.titled_metrics
        lines.append(
            f"| {label} | "
            + " | ".join(f"{metrics[m]:.3f}" if m in metrics else "-" for m in METRICS)
            + f" | {_number(titled.get('accuracy@1'))} |"
        )
    decision = report.decision
    lines += ["", "### Bias audit (names on the same CV)", "", audit_headline(report.bias_audit) + "."]
    if report.bias_audit:
        lines += ["", "| " + " | ".join(AUDIT_HEAD) + " |", "| --- |" + " --- |" * (len(AUDIT_HEAD) - 1)]
        lines += [f"| {group} | " + " | ".join(cells) + " |" for group, cells in audit_rows(report.bias_audit)]
    by_category = report.training_data.get("train_cvs_by_category", {})
    lines += [
        "",
        "### Trained on",
        "",
        f"CVs by split: {report.training_data.get('cvs_by_split', '-')}; training CVs by category: "
        + (", ".join(f"{category} {count}" for category, count in by_category.items()) or "-")
        + " (counts only: no CV text).",
        "",
        INTENDED_USE,
        "",
        f"Gate: {'promoted' if decision.promote else 'not promoted'}: {decision.reason}",
        "",
        f"Data content hash: `{report.data_hash}`",
        "",
        "Hyperparameters: " + (", ".join(f"`{k}={v}`" for k, v in sorted(report.training.items())) or "-"),
        "",
    ]
    return "\n".join(lines)
