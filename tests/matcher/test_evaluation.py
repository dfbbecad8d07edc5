import numpy as np
import pytest

from include.matcher.evaluation import category_scores, evaluate_model, ranks_of_truth, retrieval_metrics


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
    jobs = {"CHEF": ["Cook who prepares meals in a restaurant kitchen."], "PILOT": ["Aircraft pilot who flies commercial airplanes."]}
    cvs = [
        {"category": "CHEF", "text": "Line cook, prepared pasta and grilled dishes for 200 covers a night."},
        {"category": "PILOT", "text": "Captain with 5,000 flight hours on Airbus A320 aircraft."},
    ]
    result = evaluate_model(base_model, cvs, jobs)
    assert result["metrics"]["accuracy@1"] == 1.0
    assert set(result["per_category"]) == {"CHEF", "PILOT"}
