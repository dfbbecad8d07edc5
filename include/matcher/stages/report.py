"""The validation report for people: an HTML page (per-category chart, confusion matrix) and the
evaluation section of the model card, both rendered from ``validation_report.json``.

The page is ``include/matcher/pages/templates/report.html``: inline SVG and inline style, no external
asset, so the copy kept in the bucket opens from S3 or a mail attachment alike.
"""

from __future__ import annotations

from include.matcher.foundations.metrics import METRICS
from include.matcher.stages.validation_report import Decision, ModelResult, TrainingData, ValidationReport


def _number(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def model_rows(report: ValidationReport) -> list[tuple[str, ModelResult]]:
    """(label, result) for the candidate, production and the baselines, in that order."""
    rows = [
        ("candidate", report.candidate_result),
        (f"production ({report.production_label})", report.production_result),
    ]
    baselines = report.baselines or {}
    if "base_zero_shot" in baselines:
        rows.append(("base model, zero-shot", baselines["base_zero_shot"]))
    if "tfidf_logreg" in baselines:
        rows.append(("TF-IDF + logistic regression", baselines["tfidf_logreg"]))
    return rows


def evidence_rows(decision: Decision) -> list[tuple[str, dict, str]]:
    """(statistic, change, held-out count) rows of the candidate-vs-production table: the gate's
    metric, job -> CV MAP@10 and the gate's metric per category."""
    evidence = decision.evidence or {}
    metric = decision.primary_metric
    rows = []
    if evidence.get(metric) is not None:
        rows.append((f"{metric} (gate)", evidence[metric], str(evidence.get("held_out", ""))))
    if evidence.get("job_to_cv_map@10") is not None:
        rows.append(("job -> CV MAP@10 (guarded)", evidence["job_to_cv_map@10"], ""))
    rows += [
        (f"{metric}: {category}", change, str(change["count"]))
        for category, change in sorted(evidence.get("per_category", {}).items())
    ]
    return rows


def category_bars(report: ValidationReport, metric: str) -> list[dict]:
    candidate, production = report.candidate_result.categories, report.production_result.categories
    return [
        {
            "name": category,
            "count": candidate[category].get("count", 0),
            "candidate": candidate[category].get(metric, 0.0),
            "production": production.get(category, {}).get(metric, 0.0),
        }
        for category in sorted(candidate)
    ]


def confusion_view(confusion: dict) -> dict:
    """The candidate's confusion matrix as heat-map cells (rows the true category, columns the
    top-ranked one), or its largest confusions where the jobs file has too many categories."""
    if "top_confusions" in confusion:
        return {"top": confusion["top_confusions"], "categories": confusion.get("categories", "?"), "cells": []}
    labels, matrix = confusion.get("labels", []), confusion.get("matrix", [])
    cells = []
    for r, row in enumerate(matrix):
        total = max(1, sum(row))
        for c, count in enumerate(row):
            share = count / total
            colour = (
                f"rgb({255 - int(200 * share)},{255 - int(150 * share)},255)"
                if r == c
                else f"rgb(255,{255 - int(200 * share)},{255 - int(200 * share)})"
            )
            cells.append(
                {"row": r, "column": c, "count": count, "colour": colour, "truth": labels[r], "ranked": labels[c]}
            )
    # Cells and margins sized for the longest label, so 24 categories stay legible.
    margin = 20 + int(6.5 * max((len(label) for label in labels), default=4))
    return {"top": None, "labels": labels, "cells": cells, "cell": 26, "margin": margin}


def audit_headline(audit: dict | None) -> str:
    """One line: as the product reads CVs, the candidate's lowest impact ratio with its interval, its flip
    rate and largest win-rate gap; the model alone's gap beside them."""
    if not audit:
        return "bias audit: not run"
    side = audit["candidate"]
    lowest, flips, gap = side["lowest_impact_ratio"], side["flip_rate"], side["largest_win_rate_gap"]
    alone = (audit.get("model_alone") or {}).get("candidate")
    return (
        f"bias audit: lowest impact ratio {lowest['value']:.3f} (CI {lowest['low']:.3f} to {lowest['high']:.3f}), "
        f"flip rate {flips['value']:.3f}, largest win-rate gap {gap['value']:.3f} "
        f"({READS.get(audit.get('reads', 'whole text'), audit.get('reads'))})"
        + (
            f"; the model alone: largest win-rate gap {alone['largest_win_rate_gap']['value']:.3f}, flip rate "
            f"{alone['flip_rate']['value']:.3f}"
            if alone and audit.get("reads") != "model alone"
            else ""
        )
        + f" ({audit['cvs']} CVs x {audit['names']} names)"
    )


READS = {
    "redacted": "as the product reads CVs, redacted",
    "whole text": "as the product reads CVs, whole",
    "model alone": "the model alone",
}
AUDIT_MEANING = (
    "Product path: the CV as the product reads it (redacted: no name, e-mail, phone, address, links, birth date "
    "or pronouns), what ranks people; the gate's four-fifths and win-rate-gap rules read it. Model alone: the "
    "whole text with the name in it, what the model itself learned about names, where redaction misses one; the "
    "gate refuses a candidate more name-sensitive than production on either. Placebo: hobbies instead of names, "
    "what any edit of that size does."
)
AUDIT_PATHS_HEAD = [
    "placement",
    "product: win-rate gap",
    "product: flip rate",
    "model alone: win-rate gap",
    "model alone: flip rate",
]


def audit_paths(audit: dict) -> list[list[str]]:
    """Rows of the candidate's largest win-rate gap and flip rate (with intervals) per placement, on the
    product path and by the model alone, then the placebo's (empty for an audit made before placements)."""

    def cell(figure: dict | None) -> str:
        return "-" if figure is None else f"{figure['value']:.3f} ({figure['low']:.3f} to {figure['high']:.3f})"

    rows = []
    for placement, audits in (audit.get("by_placement") or {}).items():
        product = (audits.get("product") or {}).get("candidate")
        alone = audits["model_alone"]["candidate"]
        rows.append(
            [
                placement,
                cell(product and product["largest_win_rate_gap"]),
                cell(product and product["flip_rate"]),
                cell(alone["largest_win_rate_gap"]),
                cell(alone["flip_rate"]),
            ]
        )
    if audit.get("placebo"):
        placebo = audit["placebo"]["candidate"]
        rows.append(["placebo", cell(placebo["largest_win_rate_gap"]), cell(placebo["flip_rate"]), "", ""])
    return rows


IMPACT_RATIO_FLOOR = 0.8  # the four-fifths rule


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


def flagged_groups(audit: dict) -> set[str]:
    """Groups whose impact ratio (scoring or selection) is below the four-fifths rule's 0.8."""
    return {
        group
        for group, row in audit["candidate"]["groups"].items()
        if min(row["impact_ratio"], row["selection_impact_ratio"]) < IMPACT_RATIO_FLOOR
    }


AUDIT_HEAD = ["group", "scoring rate", "selection rate", "impact ratio (CI)", "selection impact ratio", "production"]


def render_report(report: ValidationReport, state=None, served: bool = False) -> str:
    """The report as a page (``templates/report.html``). ``served``: inside Airflow, with the Matcher's
    navigation, links and what became of the night (``state``); not served: the copy kept in the
    bucket, which opens anywhere."""
    from include.matcher.foundations.templating import render_template

    audit = report.bias_audit
    flagged = flagged_groups(audit) if audit else set()
    training = report.training or {}
    return render_template(
        "report.html",
        title=f"Validation report {report.version}",
        report=report,
        state=state,
        served=served,
        metric_names=METRICS,
        model_rows=model_rows(report),
        evidence_rows=evidence_rows(report.decision),
        audit_headline=audit_headline(audit),
        audit_paths=audit_paths(audit) if audit else [],
        audit_paths_head=AUDIT_PATHS_HEAD,
        audit_meaning=AUDIT_MEANING,
        audit_head=AUDIT_HEAD,
        audit_rows=[(group, cells, group in flagged) for group, cells in audit_rows(audit)] if audit else [],
        categories=category_bars(report, report.decision.primary_metric),
        confusion=confusion_view(report.candidate_result.confusion or {}),
        hyperparameters=", ".join(f"{k}={v}" for k, v in sorted(training.items())) if training else "",
    )


INTENDED_USE = """### Intended use and limits

- **For**: ranking stored CVs for a job description (and jobs for a CV) so that a recruiter reads the
  likeliest fits first, with a person deciding. Under the EU AI Act this is a high-risk system (Annex III
  4(a)). The name-swap audit above measures the rates and impact ratios NYC Local Law 144 asks about, on
  every candidate before promotion; it is not the independent audit that law requires.
- **Not for**: the sole basis of a hiring, rejection or pay decision; scoring people on anything but the
  text of their CV; CVs in other languages than English.
- **Known limits**: reads the first 512 tokens of a CV (the default reading length; the rest is cut),
  without the person's name, contact details, birth date or pronouns where it finds them (a name
  inside a sentence stays); knows only the categories it was trained on (above); the bias audit uses
  names as the one proxy for perceived race and sex (no demographic data is used or stored), so it
  cannot show bias carried by other words."""


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
        paths = audit_paths(report.bias_audit)
        if paths:
            lines += ["", AUDIT_MEANING, "", "| " + " | ".join(AUDIT_PATHS_HEAD) + " |"]
            lines += ["| --- |" + " --- |" * (len(AUDIT_PATHS_HEAD) - 1)]
            lines += ["| " + " | ".join(row) + " |" for row in paths]
    training_data = report.training_data or TrainingData()
    by_category = training_data.train_cvs_by_category or {}
    lines += [
        "",
        "### Trained on",
        "",
        f"CVs by split: {training_data.cvs_by_split or '-'}; training CVs by category: "
        + (", ".join(f"{category} {count}" for category, count in by_category.items()) or "-")
        + " (counts only: no CV text).",
        "",
        INTENDED_USE,
        "",
        f"Gate: {'promoted' if decision.promote else 'not promoted'}: {decision.reason}",
        "",
        f"Data content hash: `{report.data_hash}`",
        "",
        "Hyperparameters: " + (", ".join(f"`{k}={v}`" for k, v in sorted((report.training or {}).items())) or "-"),
        "",
    ]
    return "\n".join(lines)
