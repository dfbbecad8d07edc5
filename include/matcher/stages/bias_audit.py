"""Does a name move a candidate? A counterfactual bias audit, the way NYC Local Law 144 reads scores.

Every audited CV (held-out, title stripped, as the gate's metrics) is scored against every job
(category) in variants that differ only by a name, one variant per name of
:mod:`include.matcher.foundations.audit_names`, the name put in each placement (a line at the top,
an e-mail made of it in a contact line, a closing line after a sign-off). Each placement is read two
ways: as the product reads a CV (:mod:`~include.matcher.foundations.redaction` takes identifiers
out, so what is left is what gets past it) and by the model alone (the whole text: what the model
itself learned about names). A placebo (hobbies instead of names, the same number of variants)
shows what any edit of that size does. From each set of (CVs x names x jobs) scores:

- **scoring rate** of a group: the share of its variants scoring above the median of all variants
  for a job, averaged over jobs (LL144's rate for a tool that scores); **selection rate**: the share
  in each job's top 10 %; a group's **impact ratio** is its rate over the highest group's rate, and
  the lowest scoring-rate ratio is the headline (below 0.8: the four-fifths rule's sign of adverse
  impact; LL144 uses the scoring rate for a tool that scores). The selection rate's ratios are
  reported beside it: on a few dozen CVs a top 10 % holds a handful of CVs' variants, so its ratio
  swings far more from draw to draw (measured in docs/fairness-and-oversight.md);
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

from include.matcher.foundations.audit_names import PLACEMENTS, AuditNames
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


# The placebo: edits of a name's size that say nothing about who the person is. A name's flip rate
# is read against what any small edit of the CV does (retrieval models move on small edits too).
PLACEBO_LINE = "Interests: {name}"
PLACEBO_EDITS = (
    "hiking trips",
    "chess clubs",
    "jigsaw puzzles",
    "bird watching",
    "trail running",
    "amateur astronomy",
    "vegetable gardening",
    "model railways",
    "crossword puzzles",
    "landscape photography",
    "rock climbing",
    "board games",
    "home brewing",
    "open-water swimming",
    "stamp collecting",
    "road cycling",
    "pottery classes",
    "sailing weekends",
    "woodworking projects",
    "orienteering events",
    "kite flying",
    "origami folding",
    "fly fishing",
    "cave exploring",
)


def placebo_of(names: AuditNames) -> AuditNames:
    """Groups of the same shape as ``names`` whose "names" are non-demographic edits of about a name's size."""
    edits = iter(itertools.cycle(PLACEBO_EDITS))
    groups = {
        f"placebo_{i + 1}": tuple(next(edits) for _ in members) for i, members in enumerate(names.groups.values())
    }
    return AuditNames(groups, PLACEBO_LINE, "placebo: hobbies, one per name")


class VariantReader:
    """One model's scores of CV variants against every job (sorted), each distinct text it reads
    encoded once: redacted variants of one CV are usually the same text, and the audit's paths and
    placements share the CV's own words."""

    def __init__(self, model, jobs: dict[str, list[str]], memo=None):
        from include.matcher.foundations.evaluation import embed_for_evaluation

        self.model, self.vectors, self.memo = model, {}, memo
        _, self.job_vectors, self.job_categories = embed_for_evaluation(model, [], jobs)

    def scores(self, texts: list[str], redact: bool, owners: list[str] | None = None) -> np.ndarray:
        """(texts x jobs) scores; ``owners``: the CV key of each text, for the memo (:class:`VectorMemo`)."""
        from include.matcher.foundations.encoding import cv_pooling, encode_cvs, window_prefix
        from include.matcher.foundations.evaluation import category_scores
        from include.matcher.foundations.redaction import encoder_view

        read = encoder_view(texts, redact)
        window = getattr(self.model, "max_seq_length", None)
        if window and cv_pooling() == "truncate":  # what the model reads of it: a closing line past it reads the same
            read = [window_prefix(text, window) for text in read]
        owner_of = dict(zip(read, owners or [""] * len(read), strict=True))
        missing = [text for text in dict.fromkeys(read) if text not in self.vectors]
        if missing:
            vectors = encode_cvs(
                self.model, missing, redact=False, memo=self.memo, owners=[owner_of[text] for text in missing]
            )
            self.vectors.update(zip(missing, vectors, strict=True))
        if not read:
            return np.zeros((0, len(set(self.job_categories))), dtype=np.float32)
        scores, _ = category_scores(
            np.stack([self.vectors[text] for text in read]), self.job_vectors, self.job_categories
        )
        return np.nan_to_num(scores, nan=0.0, posinf=0.0, neginf=0.0)

    def variants(
        self, cv_texts: list[str], names: AuditNames, placement: str, redact: bool, keys: list[str] | None = None
    ) -> np.ndarray:
        """(CVs x names x jobs) scores of every CV with every name put on it in ``placement``."""
        named = names.named()
        texts = [names.put_on(name, text, placement) for text in cv_texts for _, name in named]
        owners = [key for key in (keys or [""] * len(cv_texts)) for _ in named]
        return self.scores(texts, redact, owners).reshape(len(cv_texts), len(named), -1)


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
    placements: tuple[str, ...] = PLACEMENTS,
    model_only: bool = False,
    memo=None,
) -> dict:
    """Score ``cvs`` (``text`` already title-stripped) with every name put on them in every placement,
    by each model, read two ways: as the product reads a CV (redacted, unless the deployment turned
    it off) and by the model alone (the whole text); then :func:`audit` each, and the placebo.

    The headline (``candidate``, ``production`` and the paired increases at the top level) is the
    product path, each figure at its worst placement (``worst_of`` says which); ``model_alone`` is
    the same for the model reading every name; ``by_placement`` holds every audit; ``placebo`` the
    product path's figures for edits that say nothing about the person. With ``model_only`` the
    model alone is the headline and the product path is not scored. ``memo`` answers what an earlier
    night read (:class:`~include.matcher.foundations.vector_memo.VectorMemo`).
    """
    from include.matcher.foundations.redaction import redacting

    texts, keys = [cv["text"] for cv in cvs], [cv.get("key", "") for cv in cvs]
    group_of_name = [group for group, _ in names.named()]
    readers = {label: VariantReader(model, jobs, memo) for label, model in models.items()}
    product_redacts = redacting() and not model_only
    paths = {"model_alone": False} if model_only else {"product": product_redacts, "model_alone": False}

    def audited(names_of: AuditNames, placement: str, redact: bool) -> dict:
        scores = {label: reader.variants(texts, names_of, placement, redact, keys) for label, reader in readers.items()}
        return audit(scores, [group for group, _ in names_of.named()], confidence, seed=seed)

    by_placement = {
        placement: {path: audited(names, placement, redact) for path, redact in paths.items()}
        for placement in placements
    }
    headline_path = "model_alone" if model_only else "product"
    return {
        "groups": list(names.groups),
        "names_per_group": min(map(len, names.groups.values())),
        "cvs": len(cvs),
        "names": len(group_of_name),
        "confidence": confidence,
        "resamples": next(iter(by_placement.values()))[headline_path]["resamples"],
        "placements": list(placements),
        "reads": "model alone" if model_only else ("redacted" if product_redacts else "whole text"),
        **worst_of_placements({p: audits[headline_path] for p, audits in by_placement.items()}),
        "model_alone": worst_of_placements({p: audits["model_alone"] for p, audits in by_placement.items()}),
        "by_placement": by_placement,
        "placebo": audited(placebo_of(names), "top", product_redacts),
    }


# For each headline figure, which end is the worse one.
WORSE_IS_LOWER = {"lowest_impact_ratio", "lowest_selection_impact_ratio"}


def worst_of_placements(audits: dict[str, dict]) -> dict:
    """One audit's shape from several placements' audits: each side's figures at the placement where
    they are worst (the group table from the placement of the lowest impact ratio, the win rates from
    the one of the largest gap), each paired increase where its lower bound is highest."""
    first = next(iter(audits.values()))
    result: dict = {"worst_of": {}}
    for side in ("candidate", "production"):
        if side not in first:
            continue
        figures_of = {}
        for name in HEADLINES:
            pick = (min if name in WORSE_IS_LOWER else max)(audits, key=lambda p: audits[p][side][name]["value"])
            figures_of[name] = audits[pick][side][name]
            if side == "candidate":
                result["worst_of"][name] = pick
        lowest = min(audits, key=lambda p: audits[p][side]["lowest_impact_ratio"]["value"])
        widest = max(audits, key=lambda p: audits[p][side]["largest_win_rate_gap"]["value"])
        result[side] = {
            "groups": audits[lowest][side]["groups"],
            **figures_of,
            "win_rates": audits[widest][side]["win_rates"],
        }
    for name in ("flip_rate_increase", "largest_win_rate_gap_increase"):
        if name in first:
            pick = max(audits, key=lambda p: audits[p][name]["low"])
            result[name] = audits[pick][name]
            result["worst_of"][name] = pick
    return result


def audit_held_out(
    models: dict[str, object],
    held_out: list[dict],
    jobs: dict[str, list[str]],
    gate,
    names: AuditNames | None = None,
    placements: tuple[str, ...] = PLACEMENTS,
    model_only: bool = False,
    memo=None,
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
    result = audit_models(
        models, cvs, jobs, names, gate.confidence, placements=placements, model_only=model_only, memo=memo
    )
    return {**result, "seconds": round(time.perf_counter() - started, 2)}


def latest_held_out(locations, storage) -> tuple[list[dict], dict[str, list[str]], str]:
    """(held-out CVs, jobs, run URI) of the newest night that built pairs: what ``bias-audit`` audits
    by default, the CVs no model in the registry trained on that night."""
    from include.matcher.foundations import layout

    manifests = [info.uri for info in storage.list(layout.runs(locations.work)) if layout.Run.of_manifest(info.uri)]
    runs = sorted((storage.get_json(uri)["created_at"], layout.Run.of_manifest(uri).uri) for uri in manifests)
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
    lines.append("")
    lines.append(f"{'placement':<10} {'reads':<12} {'flip rate (CI)':>24} {'largest win-rate gap (CI)':>26}")
    for placement, audits in audit_result.get("by_placement", {}).items():
        for path, found in audits.items():
            reads = audit_result["reads"] if path == "product" else "model alone"
            lines.append(
                f"{placement:<10} {reads:<12} {_bounds(found['candidate']['flip_rate']):>24} "
                f"{_bounds(found['candidate']['largest_win_rate_gap']):>26}"
            )
    if "placebo" in audit_result:
        placebo = audit_result["placebo"]["candidate"]
        lines.append(
            f"{'placebo':<10} {'(any edit)':<12} {_bounds(placebo['flip_rate']):>24} "
            f"{_bounds(placebo['largest_win_rate_gap']):>26}"
        )
    lines.append(
        f"{audit_result['cvs']} CVs x {audit_result['names']} names; {audit_result['confidence']:.0%} intervals; "
        f"headline: {audit_result.get('reads', 'model alone')}, each figure at its worst placement"
    )
    return "\n".join(lines)


def _bounds(figure: dict) -> str:
    return f"{figure['value']:.3f} ({figure['low']:.3f}-{figure['high']:.3f})"


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
        "reads": audit_result.get("reads"),
        "model_alone": {
            name: audit_result["model_alone"]["candidate"][name]["value"]
            for name in ("lowest_impact_ratio", "flip_rate", "largest_win_rate_gap")
        }
        if "model_alone" in audit_result
        else None,
        "by_placement": {
            placement: {
                path: {name: found["candidate"][name]["value"] for name in ("flip_rate", "largest_win_rate_gap")}
                for path, found in audits.items()
            }
            for placement, audits in audit_result.get("by_placement", {}).items()
        },
        "placebo": {
            name: audit_result["placebo"]["candidate"][name]["value"] for name in ("flip_rate", "largest_win_rate_gap")
        }
        if "placebo" in audit_result
        else None,
    }
