import numpy as np
import pytest

from include.matcher.foundations.evaluation import (
    category_scores,
    evaluate_model,
    evaluate_tfidf_baseline,
    truth_columns,
)
from include.matcher.foundations.metrics import job_to_cv_metrics, ranks_of_truth, retrieval_metrics


def job_to_cv(scores, categories, truth, k=10):
    return job_to_cv_metrics(scores, truth_columns(categories, truth), k=k)


def test_metrics_from_ranks():
    metrics = retrieval_metrics(np.array([1, 2, 4, 11]))
    assert metrics["accuracy@1"] == 0.25
    assert metrics["accuracy@3"] == 0.5
    assert metrics["mrr@10"] == pytest.approx((1 + 1 / 2 + 1 / 4 + 0) / 4)
    assert metrics["ndcg@10"] == pytest.approx((1 + 1 / np.log2(3) + 1 / np.log2(5) + 0) / 4)


def test_a_category_scores_its_best_description():
    cv = np.array([[1.0, 0.0]])
    jobs = np.array([[0.0, 1.0], [1.0, 0.0], [0.6, 0.8]])
    scores, categories = category_scores(cv, jobs, ["A", "A", "B"])
    assert categories == ["A", "B"]
    assert scores[0].tolist() == pytest.approx([1.0, 0.6])
    assert ranks_of_truth(scores, categories, ["B"]).tolist() == [2]


def test_evaluate_model_with_the_base_model(base_model):
    jobs = {
        "CHEF": ["Cook who prepares meals in a restaurant kitchen."],
        "PILOT": ["Aircraft pilot who flies commercial airplanes."],
    }
    cvs = [
        {"category": "CHEF", "text": "Chef\nLine cook, prepared pasta and grilled dishes for 200 covers a night."},
        {"category": "PILOT", "text": "Pilot\nCaptain with 5,000 flight hours on Airbus A320 aircraft."},
    ]
    result = evaluate_model(base_model, cvs, jobs)
    assert result["metrics"]["accuracy@1"] == 1.0 and result["text"] == "title stripped"
    assert result["with_title"]["metrics"]["accuracy@1"] == 1.0
    assert result["metrics"]["job_to_cv_recall@10"] == 1.0
    assert set(result["per_category"]) == {"CHEF", "PILOT"}
    assert result["confusion"] == {"labels": ["CHEF", "PILOT"], "matrix": [[1, 0], [0, 1]]}


class KeywordEncoder:
    """A stand-in bi-encoder that only sees whether the word "pilot" occurs."""

    def encode(self, texts, **_):
        return np.array([[1.0, 0.0] if "pilot" in text.lower() else [0.0, 1.0] for text in texts])


def test_the_primary_numbers_never_see_the_title():
    """A CV found by its title alone: kept, it ranks first; stripped (the primary numbers), it must miss."""
    jobs = {"CHEF": ["Cook in a restaurant kitchen."], "PILOT": ["Airline pilot."]}
    cvs = [{"category": "PILOT", "text": "Airline pilot\nTeam player, reliable, organised."}]
    result = evaluate_model(KeywordEncoder(), cvs, jobs, pooling="truncate")
    assert result["with_title"]["metrics"]["accuracy@1"] == 1.0
    assert result["metrics"]["accuracy@1"] == 0.0


def test_job_to_cv_recall_and_map():
    # two categories, four CVs; column A ranks CVs 0, 2, 1, 3; column B ranks 3, 1, 0, 2
    scores = np.array([[0.9, 0.2], [0.5, 0.6], [0.8, 0.1], [0.1, 0.9]])
    metrics = job_to_cv(scores, ["A", "B"], ["A", "B", "B", "B"], k=2)
    # A: its one CV first -> recall 1, AP 1. B: top-2 are CVs 3, 1 (both B) -> recall 2/3, AP 1.
    assert metrics["job_to_cv_recall@10"] == pytest.approx((1 + 2 / 3) / 2)
    assert metrics["job_to_cv_map@10"] == pytest.approx(1.0)


def test_tfidf_baseline_learns_from_the_training_split():
    train = [{"category": "CHEF", "text": f"sauce grill kitchen menu {i}"} for i in range(5)] + [
        {"category": "PILOT", "text": f"cockpit flight aircraft runway {i}"} for i in range(5)
    ]
    held_out = [
        {"category": "CHEF", "text": "Head chef\nkitchen sauce menu"},
        {"category": "PILOT", "text": "Captain\nflight cockpit runway"},
    ]
    result = evaluate_tfidf_baseline(train, held_out, {"CHEF": ["x"], "PILOT": ["y"]})
    assert result["metrics"]["accuracy@1"] == 1.0


def test_ties_count_against_the_truth():
    """A model that scores every category alike ranks the truth last, never first."""
    categories = ["A", "B", "C"]
    all_tied = np.full((4, 3), 0.5)
    assert ranks_of_truth(all_tied, categories, ["A", "B", "C", "A"]).tolist() == [3, 3, 3, 3]
    assert retrieval_metrics(ranks_of_truth(all_tied, categories, ["A", "B", "C", "A"]))["accuracy@1"] == 0.0
    partly = np.array([[0.9, 0.9, 0.1]])
    assert ranks_of_truth(partly, categories, ["A"]).tolist() == [2]


def test_scores_that_are_not_numbers_rank_last():
    categories = ["A", "B", "C"]
    scores = np.array([[np.nan, 0.2, 0.1], [np.nan, np.nan, np.nan], [np.inf, 0.3, 0.2], [0.1, np.nan, -np.inf]])
    assert ranks_of_truth(scores, categories, ["A", "B", "A", "A"]).tolist() == [3, 3, 3, 1]


def test_job_to_cv_breaks_ties_against_the_relevant_cvs():
    tied = np.zeros((4, 2))
    metrics = job_to_cv(tied, ["A", "B"], ["A", "B", "B", "B"], k=1)
    assert metrics == {"job_to_cv_recall@10": 0.0, "job_to_cv_map@10": 0.0}


def test_embedding_health_flags_collapse_zeros_and_nan():
    from include.matcher.foundations.evaluation import embedding_health

    rng = np.random.default_rng(0)
    spread = rng.normal(size=(20, 8))
    spread /= np.linalg.norm(spread, axis=1, keepdims=True)
    jobs = spread[:3]
    assert embedding_health(spread, jobs)["mean_cosine"] < 0.3
    collapsed = np.tile(spread[:1], (20, 1)) + rng.normal(scale=1e-4, size=(20, 8))
    assert embedding_health(collapsed, jobs)["mean_cosine"] > 0.99
    assert embedding_health(np.zeros((5, 8)), jobs)["zero_vectors"] == 5
    assert embedding_health(np.full((5, 8), np.nan), jobs)["finite"] is False
