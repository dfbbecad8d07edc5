from include.matcher.report import model_card_section, render_report


def sample_report(promote: bool = True) -> dict:
    def result(acc, per_category):
        return {
            "metrics": {
                "accuracy@1": acc,
                "accuracy@3": 0.9,
                "mrr@10": acc + 0.05,
                "ndcg@10": acc + 0.1,
                "job_to_cv_recall@10": 0.5,
                "job_to_cv_map@10": 0.4,
            },
            "per_category": {c: {"accuracy@1": v, "mrr@10": v, "count": 6} for c, v in per_category.items()},
            "confusion": {"labels": ["CHEF", "PILOT"], "matrix": [[5, 1], [2, 4]]},
            "with_title": {"metrics": {"accuracy@1": acc + 0.2}},
        }

    return {
        "created_at": "2026-11-25T02:00:00+00:00",
        "run": "s3://b/work/runs/night-1",
        "version": "v20261125T020000Z-abc123",
        "production": {"name": "all-MiniLM-L6-v2", "version": None},
        "held_out": {"count": 12},
        "data_hash": "d" * 64,
        "training": {"loss": "multiple_negatives", "epochs": 1, "learning_rate": 2e-5},
        "candidate_metrics": result(0.75, {"CHEF": 0.8, "PILOT": 0.7}),
        "production_metrics": result(0.5, {"CHEF": 0.6, "PILOT": 0.4}),
        "baselines": {"base_zero_shot": result(0.5, {}), "tfidf_logreg": result(0.65, {})},
        "decision": {
            "promote": promote,
            "primary_metric": "mrr@10",
            "reason": "candidate mrr@10 0.8000 beats production 0.5500",
        },
    }


def test_html_report_has_the_verdict_baselines_a_category_chart_and_a_confusion_matrix():
    page = render_report(sample_report())
    assert "PROMOTE" in page and "beats production" in page
    assert "TF-IDF + logistic regression" in page and "base model, zero-shot" in page
    assert page.count('class="category-chart"') == 1 and "CHEF (6)" in page
    assert page.count('class="confusion-matrix"') == 1
    assert "CHEF ranked as PILOT: 1" in page and "PILOT ranked as CHEF: 2" in page
    assert "d" * 64 in page and "loss=multiple_negatives" in page
    assert "KEEP PRODUCTION" in render_report(sample_report(promote=False))


def test_model_card_records_metrics_baselines_data_hash_and_hyperparameters():
    card = model_card_section(sample_report())
    assert "| candidate | 0.750 | 0.900 | 0.800 |" in card
    assert "| TF-IDF + logistic regression | 0.650 |" in card
    assert "Data content hash: `" + "d" * 64 + "`" in card
    assert "`learning_rate=2e-05`" in card and "`loss=multiple_negatives`" in card
