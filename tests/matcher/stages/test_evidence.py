"""The gate's paired bootstrap: noise is refused, a real gain passes, thin categories are named,
and the recruiter's job -> CV search cannot silently get worse."""

from __future__ import annotations

import numpy as np
import pytest

from include.matcher.foundations.evaluation import evaluate_scores
from include.matcher.foundations.metrics import per_cv_values, ranks_of_truth
from include.matcher.foundations.settings import GateConfig
from include.matcher.stages.evidence import NOT_ENOUGH_EVIDENCE, map_at_10, paired_evidence
from include.matcher.stages.validation import decide

CATEGORIES = [f"C{i:02d}" for i in range(24)]


def held_out_scores(count: int = 330, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """A production model's (CVs x categories) scores: right more often than not, like the base model."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, len(CATEGORIES), count)
    scores = rng.normal(size=(count, len(CATEGORIES)))
    scores[np.arange(count), truth] += 1.6
    return scores, [CATEGORIES[t] for t in truth]


def judged(candidate: np.ndarray, production: np.ndarray, truth: list[str], gate: GateConfig) -> dict:
    evidence = paired_evidence(
        candidate, production, CATEGORIES, truth, gate.primary_metric, gate.confidence, gate.min_category_support
    )
    return decide(
        evaluate_scores(candidate, CATEGORIES, truth),
        evaluate_scores(production, CATEGORIES, truth),
        gate,
        held_out=len(truth),
        evidence=evidence,
    )


def test_per_cv_values_average_to_the_reported_metrics_and_map_matches_evaluation():
    """What the bootstrap resamples (per-CV values, MAP@10 on a draw) is what the report says."""
    scores, truth = held_out_scores()
    metrics = evaluate_scores(scores, CATEGORIES, truth)["metrics"]
    ranks = ranks_of_truth(scores, CATEGORIES, truth)
    for metric in ("accuracy@1", "accuracy@3", "mrr@10", "ndcg@10"):
        assert per_cv_values(ranks, metric).mean() == pytest.approx(metrics[metric])
    columns = np.asarray([CATEGORIES.index(t) for t in truth])
    scores[:20] = 0.0  # ties, broken against the relevant CVs in both
    tied = evaluate_scores(scores, CATEGORIES, truth)["metrics"]
    assert map_at_10(scores, columns) == pytest.approx(tied["job_to_cv_map@10"])


def test_a_candidate_equal_to_production_plus_noise_is_refused_though_its_point_estimate_clears_the_bar():
    """Two models of the same quality (one underlying ranking, independent noise on each): the
    point-estimate gate promotes whichever noise happens to look better; the interval does not."""
    underlying, truth = held_out_scores()
    production = underlying + np.random.default_rng(99).normal(scale=0.5, size=underlying.shape)
    gate = GateConfig(min_improvement=0.01)
    point_gate = GateConfig(min_improvement=0.01, confidence=0, max_job_to_cv_drop=1.0, max_category_drop=1.0)
    for seed in range(50):  # a noisy copy whose point estimate happens to look better by >= 0.01
        candidate = underlying + np.random.default_rng(100 + seed).normal(scale=0.5, size=underlying.shape)
        if judged(candidate, production, truth, point_gate)["promote"]:
            break
    else:
        pytest.fail("no noisy copy cleared the point-estimate gate: the test lost its point")
    decision = judged(candidate, production, truth, gate)
    primary = decision["evidence"]["mrr@10"]
    assert primary["difference"] >= 0.01 and primary["low"] < 0.01 < primary["high"]
    assert not decision["promote"] and decision["decided_by"] == ["improvement"]
    assert "95% CI" in decision["reason"] and "does not clear" in decision["reason"]


def test_a_clearly_better_candidate_passes_with_its_interval_in_the_reason():
    production, truth = held_out_scores()
    candidate = production.copy()
    columns = [CATEGORIES.index(t) for t in truth]
    better = np.random.default_rng(7).random(len(truth)) < 0.4
    candidate[np.flatnonzero(better), np.asarray(columns)[better]] += 3.0
    decision = judged(candidate, production, truth, GateConfig())
    assert decision["promote"], decision["reason"]
    assert decision["evidence"]["mrr@10"]["low"] > 0.05
    assert decision["evidence"]["resamples"] == 2000 and decision["evidence"]["confidence"] == 0.95
    assert "clears the required +0.0100" in decision["reason"]


def test_categories_too_small_to_judge_are_reported_not_passed_in_silence():
    production, truth = held_out_scores(count=330)
    truth = ["TINY" if i < 3 else t for i, t in enumerate(truth)]
    categories = [*CATEGORIES, "TINY"]
    production = np.hstack([production, np.zeros((len(truth), 1))])
    production[:3, -1] = 5.0
    candidate = production.copy()
    candidate[:3, -1] = -5.0  # the tiny category collapses completely
    gate = GateConfig(min_improvement=0.0, min_category_support=5)
    evidence = paired_evidence(candidate, production, categories, truth, "mrr@10", 0.95, 5)
    assert evidence["per_category"]["TINY"] == {"count": 3, "status": NOT_ENOUGH_EVIDENCE}
    decision = decide(
        evaluate_scores(candidate, categories, truth),
        evaluate_scores(production, categories, truth),
        gate,
        held_out=len(truth),
        evidence=evidence,
    )
    assert decision["not_enough_evidence"] == ["TINY"] and "not enough evidence" in decision["reason"]
    assert "TINY" in decision["reason"]


def test_a_category_that_drops_beyond_doubt_refuses_the_candidate():
    production, truth = held_out_scores()
    candidate = production.copy()
    lost = np.asarray([t == "C03" for t in truth])
    candidate[lost, CATEGORIES.index("C03")] -= 6.0
    columns = np.asarray([CATEGORIES.index(t) for t in truth])
    boosted = ~lost
    candidate[np.flatnonzero(boosted), columns[boosted]] += 2.0
    decision = judged(candidate, production, truth, GateConfig())
    assert not decision["promote"] and "no_category_drop" in decision["decided_by"]
    assert set(decision["category_drops"]) == {"C03"}


def test_a_candidate_that_wrecks_the_recruiters_job_to_cv_search_is_refused():
    """Per-CV offsets leave every CV's ranking of categories as it was (so CV -> job improves by the
    boost alone) but scramble each category's ranking of CVs: job -> CV MAP@10 falls."""
    production, truth = held_out_scores()
    columns = np.asarray([CATEGORIES.index(t) for t in truth])
    candidate = production + np.random.default_rng(3).normal(scale=20.0, size=(len(truth), 1))
    boosted = np.random.default_rng(4).random(len(truth)) < 0.3
    candidate[np.flatnonzero(boosted), columns[boosted]] += 3.0
    decision = judged(candidate, production, truth, GateConfig())
    assert decision["checks"]["improvement"] and not decision["checks"]["no_job_to_cv_drop"]
    assert not decision["promote"] and decision["decided_by"] == ["no_job_to_cv_drop"]
    assert decision["evidence"]["job_to_cv_map@10"]["high"] < 0


def test_the_same_night_decides_the_same_way():
    production, truth = held_out_scores()
    candidate = production + np.random.default_rng(1).normal(scale=0.5, size=production.shape)
    first = paired_evidence(candidate, production, CATEGORIES, truth, "mrr@10", 0.95, 5)
    assert paired_evidence(candidate, production, CATEGORIES, truth, "mrr@10", 0.95, 5) == first
