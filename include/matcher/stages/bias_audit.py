"""Does a name move a candidate? A counterfactual bias audit, the way NYC Local Law 144 reads scores.

Every audited CV (held-out, title stripped, as the gate's metrics) is scored against every job
(category) in variants that differ only by a name line at its top, one variant per name of
:mod:`include.matcher.foundations.audit_names`. From the (CVs x names x jobs) scores:

- **scoring rate** of a group: the share of its variants scoring above the median of all variants
  for a job, averaged over jobs (LL144's rate for a tool that scores); **selection rate**: the share
  in each job's top 10 %; a group's **impact ratio** is its rate over the highest group's rate, and
  the lowest scoring-rate ratio is the headline (below 0.8: the four-fifths rule's sign of adverse
  impact; LL144 uses the scoring rate for a tool that scores). The selection rate's ratios are
  reported beside it: on a few dozen CVs a top 10 % holds a handful of CVs' variants, so its ratio
  swings far more from draw to draw (measured in README "Fairness and oversight");
- **name sensitivity**: mean absolute score change between two variants of the same CV for a job;
  **flip rate**: share of (CV, job) pairs where the name alone moves the CV in or out of the job's
  top 10 %;
- **paired win rate** of group A over B: share of (CV, job, name of A, name of B) where A's variant
  outscores B's, ties half (0.5: the name does not matter); the **largest win-rate gap** is the
  largest |win rate - 0.5| over pairs of groups.

Each figure has a bootstrap interval over the audited CVs (the gate's rule: fixed seed, percentile
interval); the candidate and production are resampled on the same draws, so the change in flip rate
and in win-rate gap between them has a paired interval the gate can decide on.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from include.matcher.foundations.audit_names import AuditNames
from include.matcher.stages.evidence import interval

RESAMPLES = 1000
TOP_SHARE = 0.10


def audited_cvs(cvs: list[dict], jobs: dict, count: int) -> list[dict]:
    """Up to ``count`` CVs of categories the jobs file has, spread over categories in turn (0: all)."""
    by_category: dict[str, list[dict]] = {}
    for cv in sorted(cvs, key=lambda cv: cv["key"]):
        if cv["category"] in jobs:
            by_category.setdefault(cv["category"], []).append(cv)
    spread = [cv for row in itertools.zip_longest(*by_category.values()) for cv in row if cv is not None]
    return spread if count <= 0 else spread[:count]


def variant_scores(model, cv_texts: list[str], jobs: dict[str, list[str]], names: AuditNames) -> np.ndarray:
    """(CVs x names x jobs) scores of every CV with every name put on it; jobs in sorted order."""
    from include.matcher.foundations.evaluation import category_scores, embed_for_evaluation

    named = names.named()
    texts = [names.put_on(name, text) for text in cv_texts for _, name in named]
    if not texts:
        return np.zeros((0, len(named), len(jobs)), dtype=np.float32)
    cv_vectors, job_vectors, job_categories = embed_for_evaluation(model, texts, jobs)
    scores, _ = category_scores(cv_vectors, job_vectors, job_categories)
    scores = np.nan_to_num(scores, nan=0.0, posinf=0.0, neginf=0.0)
    return scores.reshape(len(cv_texts), len(named), -1)


def figures(scores: np.ndarray, group_of_name: list[str]) -> dict:
    """The audit's point figures for one model's (CVs x names x jobs) scores."""
    cvs, name_count, jobs = scores.shape
    groups = list(dict.fromkeys(group_of_name))
    members = {g: np.asarray([i for i, x in enumerate(group_of_name) if x == g]) for g in groups}
    flat = scores.reshape(cvs * name_count, jobs)
    median = np.median(flat, axis=0)
    keep = max(1, math.ceil(TOP_SHARE * cvs * name_count))
    cut = -np.sort(-flat, axis=0)[keep - 1]  # each job's top 10 %, ties at the cut all in
    above, selected = scores > median, scores >= cut
    rates = {
        kind: {g: float(hits[:, members[g], :].mean()) for g in groups}
        for kind, hits in (("scoring_rate", above), ("selection_rate", selected))
    }
    ratios = {kind: _impact_ratios(rates[kind]) for kind in rates}
    left, right = np.triu_indices(name_count, k=1)
    flips = selected.any(axis=1) & ~selected.all(axis=1)
    win_rates = {}
    for a, b in itertools.combinations(groups, 2):
        sa, sb = scores[:, members[a], None, :], scores[:, None, members[b], :]
        win_rates[f"{a}>{b}"] = float(((sa > sb) + 0.5 * (sa == sb)).mean())
    return {
        "groups": {
            g: {
                "scoring_rate": rates["scoring_rate"][g],
                "selection_rate": rates["selection_rate"][g],
                "impact_ratio": ratios["scoring_rate"][g],
                "selection_impact_ratio": ratios["selection_rate"][g],
            }
            for g in groups
        },
        "lowest_impact_ratio": min(ratios["scoring_rate"].values()),
        "lowest_selection_impact_ratio": min(ratios["selection_rate"].values()),
        "name_sensitivity": float(np.abs(scores[:, left, :] - scores[:, right, :]).mean()) if len(left) else 0.0,
        "flip_rate": float(flips.mean()),
        "win_rates": win_rates,
        "largest_win_rate_gap": max((abs(w - 0.5) for w in win_rates.values()), default=0.0),
    }


def _impact_ratios(rates: dict[str, float]) -> dict[str, float]:
    best = max(rates.values())
    return {g: (rate / best if best > 0 else 1.0) for g, rate in rates.items()}


HEADLINES = (
    "lowest_impact_ratio",
    "lowest_selection_impact_ratio",
    "flip_rate",
    "name_sensitivity",
    "largest_win_rate_gap",
)


def audit(
    scores: dict[str, np.ndarray],
    group_of_name: list[str],
    confidence: float,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> dict:
    """Figures with intervals for each model (``scores``: model label -> (CVs x names x jobs)), and,
    with a ``candidate`` and a ``production``, the paired change of flip rate and win-rate gap."""
    cvs = next(iter(scores.values())).shape[0]
    point = {side: figures(s, group_of_name) for side, s in scores.items()}
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, cvs, size=(resamples if confidence > 0 and cvs else 0, cvs))
    drawn = {side: [figures(s[d], group_of_name) for d in draws] for side, s in scores.items()}

    def bounds(values: list[float], value: float) -> dict:
        low, high = interval(np.asarray(values), confidence) if values else (value, value)
        return {"value": round(value, 4), "low": round(low, 4), "high": round(high, 4)}

    def group_row(row: dict, ratios: list[float]) -> dict:
        ratio = bounds(ratios, row["impact_ratio"])
        return {
            **{k: round(v, 4) for k, v in row.items()},
            "impact_ratio_low": ratio["low"],
            "impact_ratio_high": ratio["high"],
        }

    result = {"cvs": cvs, "names": len(group_of_name), "confidence": confidence, "resamples": int(len(draws))}
    for side, figure in point.items():
        samples = drawn[side]
        result[side] = {
            "groups": {
                g: group_row(row, [s["groups"][g]["impact_ratio"] for s in samples])
                for g, row in figure["groups"].items()
            },
            **{name: bounds([s[name] for s in samples], figure[name]) for name in HEADLINES},
            "win_rates": {pair: round(w, 4) for pair, w in figure["win_rates"].items()},
        }
    if "candidate" in point and "production" in point:
        for name in ("flip_rate", "largest_win_rate_gap"):
            change = point["candidate"][name] - point["production"][name]
            result[f"{name}_increase"] = bounds(
                [c[name] - p[name] for c, p in zip(drawn["candidate"], drawn["production"], strict=True)], change
            )
    return result


def audit_models(
    models: dict[str, object],
    cvs: list[dict],
    jobs: dict[str, list[str]],
    names: AuditNames,
    confidence: float,
    seed: int = 0,
) -> dict:
    """Score ``cvs`` (``text`` already title-stripped) in every name's variant with each model, then :func:`audit`."""
    texts = [cv["text"] for cv in cvs]
    scores = {label: variant_scores(model, texts, jobs, names) for label, model in models.items()}
    result = audit(scores, [group for group, _ in names.named()], confidence, seed=seed)
    return {"groups": list(names.groups), "names_per_group": min(map(len, names.groups.values())), **result}


def audit_held_out(
    models: dict[str, object], held_out: list[dict], jobs: dict[str, list[str]], gate, names: AuditNames | None = None
) -> dict | None:
    """The gate's audit: ``gate.audit_cvs`` held-out CVs (titles stripped, as the gate's metrics), with
    ``gate.audit_names_per_group`` names of each group; its cost in seconds recorded beside the figures."""
    import time

    from include.matcher.foundations.audit_names import load_audit_names
    from include.matcher.foundations.text import strip_title

    started = time.perf_counter()
    names = (names or load_audit_names()).first(gate.audit_names_per_group)
    cvs = [{**cv, "text": strip_title(cv["text"])} for cv in audited_cvs(held_out, jobs, gate.audit_cvs)]
    if not cvs:
        return None
    result = audit_models(models, cvs, jobs, names, gate.confidence)
    return {**result, "seconds": round(time.perf_counter() - started, 2)}


def latest_held_out(locations, storage) -> tuple[list[dict], dict[str, list[str]], str]:
    """(held-out CVs, jobs, run URI) of the newest night that built pairs: what ``bias-audit`` audits
    by default, the CVs no model in the registry trained on that night."""
    from include.matcher.foundations import layout

    manifests = [info.uri for info in storage.list(layout.runs(locations.work)) if info.uri.endswith("/manifest.json")]
    runs = sorted((storage.get_json(uri)["created_at"], uri.rsplit("/", 1)[0]) for uri in manifests)
    for _, run_uri in reversed(runs):
        pairs = layout.Run(run_uri).pairs
        if storage.exists(pairs.split("test")):
            return storage.get_jsonl(pairs.split("test")), storage.get_json(pairs.jobs), run_uri
    raise LookupError("no night has built pairs yet: give --data-root (a <CATEGORY>/<file> folder) instead")


def table(audit_result: dict) -> str:
    """The LL144-style table of one model's audit, for a terminal."""
    side = audit_result["candidate"]
    lines = [
        f"{'group':<16} {'scoring rate':>12} {'selection rate':>14} {'impact ratio (CI)':>26} {'selection IR':>12}",
    ]
    for group, row in side["groups"].items():
        ratio = f"{row['impact_ratio']:.3f} ({row['impact_ratio_low']:.3f}-{row['impact_ratio_high']:.3f})"
        lines.append(
            f"{group:<16} {row['scoring_rate']:>12.3f} {row['selection_rate']:>14.3f} {ratio:>26} "
            f"{row['selection_impact_ratio']:>12.3f}"
        )
    for name in ("lowest_impact_ratio", "flip_rate", "name_sensitivity", "largest_win_rate_gap"):
        figure = side[name]
        lines.append(
            f"{name.replace('_', ' ')}: {figure['value']:.3f} (CI {figure['low']:.3f} to {figure['high']:.3f})"
        )
    lines.append("paired win rates: " + ", ".join(f"{pair} {w:.3f}" for pair, w in side["win_rates"].items()))
    lines.append(
        f"{audit_result['cvs']} CVs x {audit_result['names']} names; {audit_result['confidence']:.0%} intervals"
    )
    return "\n".join(lines)


def headline(audit_result: dict) -> dict:
    """The figures ``bias-audit --json`` ends with."""
    side = audit_result["candidate"]
    return {
        "groups": {
            g: {k: row[k] for k in ("scoring_rate", "selection_rate", "impact_ratio")}
            for g, row in side["groups"].items()
        },
        "lowest_impact_ratio": side["lowest_impact_ratio"]["value"],
        "lowest_impact_ratio_interval": [side["lowest_impact_ratio"]["low"], side["lowest_impact_ratio"]["high"]],
        "flip_rate": side["flip_rate"]["value"],
        "largest_win_rate_gap": side["largest_win_rate_gap"]["value"],
        "name_sensitivity": side["name_sensitivity"]["value"],
        "cvs": audit_result["cvs"],
        "names": audit_result["names"],
    }
