import json

from include.matcher.stages.report import model_card_section, render_report
from include.matcher.stages.validation_report import ValidationReport


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
    page = render_report(ValidationReport.from_json(sample_report()))
    assert "PROMOTE" in page and "beats production" in page
    assert "TF-IDF + logistic regression" in page and "base model, zero-shot" in page
    assert page.count('class="category-chart"') == 1 and "CHEF (6)" in page
    assert page.count('class="confusion-matrix"') == 1
    assert "CHEF ranked as PILOT: 1" in page and "PILOT ranked as CHEF: 2" in page
    assert "d" * 64 in page and "loss=multiple_negatives" in page
    assert "KEEP PRODUCTION" in render_report(ValidationReport.from_json(sample_report(promote=False)))


def test_model_card_records_metrics_baselines_data_hash_and_hyperparameters():
    card = model_card_section(ValidationReport.from_json(sample_report()))
    assert "| candidate | 0.750 | 0.900 | 0.800 |" in card
    assert "| TF-IDF + logistic regression | 0.650 |" in card
    assert "Data content hash: `" + "d" * 64 + "`" in card
    assert "`learning_rate=2e-05`" in card and "`loss=multiple_negatives`" in card


def test_a_jobs_file_with_thousands_of_categories_gives_a_bounded_report():
    """2,000 categories once made a 555 MB report page (a 2,000 x 2,000 matrix): beyond 50, the
    report keeps the largest confusions, and its size grows with the categories, not their square."""
    import json

    import numpy as np

    from include.matcher.foundations.evaluation import MAX_CONFUSION_CATEGORIES, TOP_CONFUSIONS, evaluate_scores
    from include.matcher.stages.validation_report import ValidationReport

    def report_for(count: int) -> tuple[dict, str]:
        categories = [f"CATEGORY-{i:04d}" for i in range(count)]
        rng = np.random.default_rng(0)
        truth = [categories[i % count] for i in range(3 * count)]
        result = evaluate_scores(rng.random((len(truth), count)), categories, truth)
        report = {**sample_report(), "candidate_metrics": result, "production_metrics": result}
        return report, render_report(ValidationReport.from_json(report))

    small, _ = report_for(MAX_CONFUSION_CATEGORIES)
    assert len(small["candidate_metrics"]["confusion"]["matrix"]) == MAX_CONFUSION_CATEGORIES
    large, page = report_for(2_000)
    confusion = large["candidate_metrics"]["confusion"]
    assert confusion["matrix"] == [] and confusion["categories"] == 2_000
    assert len(confusion["top_confusions"]) == TOP_CONFUSIONS
    counts = [c["count"] for c in confusion["top_confusions"]]
    assert counts == sorted(counts, reverse=True) and all(
        c["true"] != c["predicted"] for c in confusion["top_confusions"]
    )
    assert 'class="confusion-matrix"' not in page and "largest confusions" in page
    assert len(page) < 5_000_000 and len(json.dumps(large)) < 5_000_000


def test_a_deeply_nested_jobs_file_gives_a_one_line_error():
    import pytest

    from include.matcher.foundations.jobs import parse_job_descriptions

    with pytest.raises(ValueError, match="nested too deeply") as refused:
        parse_job_descriptions(b"[" * 200_000 + b"]" * 200_000)
    assert "\n" not in str(refused.value)


def test_the_report_is_a_typed_record_that_round_trips_its_json():
    import pytest

    from include.matcher.stages.validation_report import UnreadableReport, read_report

    written = sample_report()
    report = read_report(json.dumps(written).encode())
    assert report.to_json() == written
    assert report.decision.promote is True and report.decision.primary_metric == "mrr@10"
    assert report.candidate_result.metric("mrr@10") == 0.8 and report.candidate_result.metric("absent") == 0.0
    assert report.production_label == "all-MiniLM-L6-v2" and report.run_name == "night-1"
    assert report.baselines["tfidf_logreg"].metric("accuracy@1") == 0.65
    assert report.candidate_result.titled_metrics == {"accuracy@1": 0.95}
    with pytest.raises(UnreadableReport, match="decision.promote"):
        read_report(json.dumps({**written, "decision": {**written["decision"], "promote": "yes"}}).encode())


def sample_audit() -> dict:
    import numpy as np

    from include.matcher.stages.bias_audit import audit

    scores = np.repeat(np.random.default_rng(0).random((30, 1, 4)), 4, axis=1)
    scores[:, 2:, :] -= 0.1
    found = audit(
        {"candidate": scores, "production": scores}, ["white_male", "white_male", "black_male", "black_male"], 0.95, 100
    )
    return {**found, "groups": ["white_male", "black_male"], "names_per_group": 2}


def test_the_report_page_and_the_model_card_show_the_bias_audit_and_what_the_model_is_for():
    report = ValidationReport.from_json(
        {
            **sample_report(),
            "bias_audit": sample_audit(),
            "training_data": {"cvs_by_split": {"train": 40}, "train_cvs_by_category": {"CHEF": 22, "PILOT": 18}},
        }
    )
    lowest = report.bias_audit["candidate"]["lowest_impact_ratio"]
    headline = f"lowest impact ratio {lowest['value']:.3f} (CI {lowest['low']:.3f} to {lowest['high']:.3f})"
    page = render_report(report)
    assert "Bias audit" in page and headline in page and "black_male" in page and "flip rate" in page
    card = model_card_section(report)
    assert headline in card and "| black_male |" in card
    assert "Not for**: the sole basis of a hiring" in card and "first 512 tokens" in card
    assert "CHEF 22, PILOT 18" in card
    assert "bias audit: not run" in model_card_section(ValidationReport.from_json(sample_report()))


def placement_audit() -> dict:
    """An audit of today's shape: the product path fair in every placement, the model alone biased at
    the contact line, and the placebo, through the same helpers the audit uses."""
    import numpy as np

    from include.matcher.stages.bias_audit import audit, worst_of_placements

    def scores(shift: float) -> np.ndarray:
        found = np.repeat(np.random.default_rng(0).random((30, 1, 4)), 4, axis=1)
        found[:, 2:, :] -= shift
        return found

    def one(shift: float) -> dict:
        return audit({"candidate": scores(shift), "production": scores(0.0)}, ["a", "a", "b", "b"], 0.95, 100)

    by_placement = {
        "top": {"product": one(0.0), "model_alone": one(0.02)},
        "contact": {"product": one(0.0), "model_alone": one(0.2)},
        "closing": {"product": one(0.0), "model_alone": one(0.0)},
    }
    return {
        "groups": ["a", "b"],
        "names_per_group": 2,
        "cvs": 30,
        "names": 4,
        "confidence": 0.95,
        "resamples": 100,
        "placements": list(by_placement),
        "reads": "redacted",
        **worst_of_placements({p: audits["product"] for p, audits in by_placement.items()}),
        "model_alone": worst_of_placements({p: audits["model_alone"] for p, audits in by_placement.items()}),
        "by_placement": by_placement,
        "placebo": one(0.05),
    }


def test_the_report_card_and_page_headline_the_product_path_with_the_model_alone_beside_it():
    from include.matcher.stages.validation_report import read_report

    written = {**sample_report(), "bias_audit": placement_audit()}
    report = read_report(json.dumps(written).encode())  # the reader accepts the placements' shape
    assert report.to_json() == written
    card, page = model_card_section(report), render_report(report)
    for told in (card, page):
        assert "largest win-rate gap 0.000 (as the product reads CVs, redacted)" in told
        assert "the model alone: largest win-rate gap 0.500" in told
        assert "Product path: the CV as the product reads it" in told and "Placebo: hobbies" in told
    assert "| contact | 0.000 (0.000 to 0.000) | 0.000 (0.000 to 0.000) | 0.500 (0.500 to 0.500) |" in card
    assert "| placebo |" in card
    assert "<th>contact</th>" in page and "<th>placebo</th>" in page


def test_a_writer_that_puts_a_field_the_report_does_not_declare_fails_and_a_reader_skips_it():
    import pytest

    from include.matcher.stages.validation_report import UnreadableReport, read_report

    written = sample_report()
    assert ValidationReport.written(written).to_json() == written
    with pytest.raises(UnreadableReport, match=r"^report: .*not declared by ValidationReport: surprise"):
        ValidationReport.written({**written, "surprise": 1})
    with pytest.raises(UnreadableReport, match=r"^report\.decision: .*not declared by Decision: margin"):
        ValidationReport.written({**written, "decision": {**written["decision"], "margin": 0.1}})
    later = read_report(json.dumps({**written, "surprise": 1}).encode())  # a later version's report stays readable
    assert later.to_json() == written
