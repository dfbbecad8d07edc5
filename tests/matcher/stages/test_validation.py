import random

from include.matcher.foundations.evaluation import evaluate_model
from include.matcher.foundations.settings import GateConfig, SplitConfig, TrainingConfig
from include.matcher.stages.validation import decide
from include.matcher.stages.validation_report import ValidationReport
from tests.helpers import damaged_model


def result(mrr, per_category=None):
    return {"metrics": {"mrr@10": mrr, "accuracy@1": mrr}, "per_category": per_category or {}}


def cat(mrr, count=10):
    return {"mrr@10": mrr, "count": count}


def test_gate_requires_min_improvement():
    gate = GateConfig(min_improvement=0.02)
    assert decide(result(0.80), result(0.75), gate, held_out=50)["promote"]
    assert not decide(result(0.76), result(0.75), gate, held_out=50)["promote"]
    assert not decide(result(0.70), result(0.75), gate, held_out=50)["promote"]


def test_gate_refuses_a_candidate_that_sacrifices_a_category():
    gate = GateConfig(min_improvement=0.01, max_category_drop=0.10)
    candidate = result(0.85, {"A": cat(1.0), "B": cat(0.95), "C": cat(0.60)})
    production = result(0.80, {"A": cat(0.80), "B": cat(0.80), "C": cat(0.80)})
    decision = decide(candidate, production, gate, held_out=30)
    assert not decision["promote"] and decision["category_drops"] == {"C": 0.2}
    assert "C" in decision["reason"]


def test_small_categories_are_too_noisy_to_block():
    gate = GateConfig(min_category_support=5)
    candidate = result(0.85, {"A": cat(1.0), "B": cat(0.0, count=2)})
    production = result(0.80, {"A": cat(0.8), "B": cat(1.0, count=2)})
    assert decide(candidate, production, gate, held_out=12)["promote"]


def test_gate_enforces_an_absolute_floor():
    decision = decide(result(0.25), result(0.10), GateConfig(min_primary=0.30), held_out=50)
    assert not decision["promote"] and "floor" in decision["reason"]


def test_gate_refuses_without_held_out_data():
    decision = decide(result(0.9), result(0.1), GateConfig(), held_out=0)
    assert not decision["promote"] and "no held-out" in decision["reason"]


def test_reason_names_the_numbers():
    reason = decide(result(0.8), result(0.7), GateConfig(min_improvement=0.05), held_out=10)["reason"]
    assert "0.8000" in reason and "0.7000" in reason and "+0.0500" in reason


def test_a_candidate_trained_on_shuffled_labels_is_refused(tmp_path, demo_folder, base_model):
    """Deliberate damage: every CV trained against a random category's descriptions."""
    from include.legacy.labelled_folders import load_labelled_cvs
    from include.matcher.foundations.jobs import load_job_descriptions
    from include.matcher.foundations.models import load_model
    from include.matcher.stages.pairs import build_examples, split_corpus
    from include.matcher.stages.training import train_model

    cvs, _ = load_labelled_cvs(str(demo_folder / "cvs"))
    jobs = load_job_descriptions(demo_folder / "job_descriptions.json")
    by_split, _ = split_corpus(cvs, jobs, SplitConfig(validation_fraction=0.0, test_fraction=0.4))
    rng = random.Random(0)
    shuffled = [{**cv, "category": rng.choice(sorted(jobs))} for cv in by_split["train"]]
    examples = build_examples(shuffled, jobs, "multiple_negatives", 1.0, seed=0)
    damaged = train_model(
        examples.rows,
        examples.metadata,
        TrainingConfig(epochs=4, learning_rate=1e-4, batch_size=8),
        tmp_path / "damaged",
    )

    held_out = by_split["test"] + by_split["validation"]
    candidate = evaluate_model(load_model(str(damaged), device="cpu"), held_out, jobs)
    production = evaluate_model(base_model, held_out, jobs)
    decision = decide(
        candidate, production, GateConfig(min_improvement=0.0, min_category_support=3), held_out=len(held_out)
    )
    assert candidate["metrics"]["mrr@10"] < production["metrics"]["mrr@10"], (
        candidate["metrics"],
        production["metrics"],
    )
    assert not decision["promote"], decision


def test_settings_refuse_values_that_would_break_training_or_the_gate():
    import math

    import pytest

    for bad in (math.inf, math.nan, 0.0, -1e-5):
        with pytest.raises(ValueError, match="learning_rate"):
            TrainingConfig(learning_rate=bad)
    with pytest.raises(ValueError, match="checkpoint_steps"):
        TrainingConfig(checkpoint_steps=-1)
    with pytest.raises(ValueError, match="checkpoint_minutes"):
        TrainingConfig(checkpoint_minutes=0)
    with pytest.raises(ValueError, match="confidence"):
        GateConfig(confidence=1.0)
    with pytest.raises(ValueError, match="min_improvement"):
        GateConfig(min_improvement=-0.1)
    with pytest.raises(ValueError, match="min_improvement"):
        GateConfig(min_improvement=math.nan)
    with pytest.raises(ValueError, match="max_category_drop"):
        GateConfig(max_category_drop=1.5)
    with pytest.raises(ValueError, match="min_primary"):
        GateConfig(min_primary=-0.01)
    with pytest.raises(ValueError, match="primary_metric"):
        GateConfig(primary_metric="accuracy")
    with pytest.raises(ValueError, match="learning_rate"):
        TrainingConfig.from_mapping({"learning_rate": "inf"})  # what a DAG param or CLI string becomes


def test_a_broken_candidate_is_refused_whatever_its_metrics():
    candidate = result(0.99, {"A": cat(1.0)})
    decision = decide(
        candidate,
        result(0.5),
        GateConfig(),
        held_out=20,
        problems=["3 of 103 weight tensors hold NaN or infinite values (first: x)"],
    )
    assert not decision["promote"] and decision["checks"] == {"healthy": False}
    assert decision["reason"].startswith("candidate refused as broken: 3 of 103 weight tensors")


HELD_OUT = [
    {
        "key": "CHEF/line.pdf",
        "category": "CHEF",
        "text": "Chef\nLine cook, prepared pasta and grilled dishes for 200 covers a night.",
    },
    {
        "key": "PILOT/captain.pdf",
        "category": "PILOT",
        "text": "Pilot\nCaptain with 5,000 flight hours on Airbus A320 aircraft.",
    },
    {
        "key": "CHEF/pastry.pdf",
        "category": "CHEF",
        "text": "Cook\nPastry section, bread and desserts for a hotel restaurant.",
    },
    {
        "key": "PILOT/fo.pdf",
        "category": "PILOT",
        "text": "First officer\nInstrument rating, long-haul flights, crew resource management.",
    },
]
JOBS = {
    "CHEF": ["Cook who prepares meals in a restaurant kitchen."],
    "PILOT": ["Aircraft pilot who flies commercial airplanes."],
}


def test_nan_and_all_zero_models_score_nothing_and_are_refused(base_model, tmp_path):
    from include.matcher.stages.validation import model_problems

    production = evaluate_model(base_model, HELD_OUT, JOBS)
    assert model_problems(base_model, production["health"], GateConfig()) == []
    for how in ("nan", "zero"):
        broken = damaged_model(base_model, tmp_path / how, how)
        scored = evaluate_model(broken, HELD_OUT, JOBS)
        assert scored["metrics"]["accuracy@1"] == 0.0 and scored["metrics"]["mrr@10"] == 0.5, (
            how,
            scored["metrics"],
        )  # truth last of 2
        problems = model_problems(broken, scored["health"], GateConfig())
        decision = decide(
            scored,
            production,
            GateConfig(min_improvement=0.0, min_primary=0.0),
            held_out=len(HELD_OUT),
            problems=problems,
        )
        assert not decision["promote"] and "refused as broken" in decision["reason"], (how, decision)
    assert any(
        "weight tensors hold NaN" in p
        for p in model_problems(damaged_model(base_model, tmp_path / "nan", "nan"), None, GateConfig())
    )


def night_with_candidate(storage, locations, name: str, base_model, tmp_path, how: str | float):
    """A run whose pairs hold HELD_OUT and JOBS and whose candidate is the base model damaged ``how``
    (or, for a number, with its last LayerNorm scaled by it: a working model of its own): (run, pairs,
    candidate) URIs, ready for ``validate``."""
    import copy

    import torch

    from include.matcher.foundations.uris import join_uri

    run = join_uri(locations.work, "runs", name)
    pairs = join_uri(run, "pairs")
    storage.put_jsonl(join_uri(pairs, "test.jsonl"), HELD_OUT)
    storage.put_jsonl(join_uri(pairs, "train_cvs.jsonl"), HELD_OUT)
    storage.put_json(join_uri(pairs, "jobs.json"), JOBS)
    storage.put_json(join_uri(pairs, "summary.json"), {"data_hash": "h"})
    folder = tmp_path / f"{name}-candidate"
    if isinstance(how, str):
        damaged_model(base_model, folder, how)
    else:
        model = copy.deepcopy(base_model)
        with torch.no_grad():
            model[0].auto_model.encoder.layer[-1].output.LayerNorm.weight.mul_(how)
        model.save(str(folder), create_model_card=False)
    storage.upload_dir(folder, join_uri(run, "candidate"))
    return run, pairs, join_uri(run, "candidate")


def test_the_next_night_takes_production_vectors_from_the_last_and_reads_only_its_candidate(
    storage, locations, base_model, tmp_path
):
    """Validation reads the held-out CVs and the audit's variants with candidate and production; the
    next night, production (here the base model) reads the same texts the same way: taken from the
    memo, with the same figures. A cleared and re-run validate reads nothing at all."""
    from include.matcher.stages.validation import validate

    gate = GateConfig(min_improvement=0.0, min_primary=0.0)
    reports = []
    for name, scale in (("memo-1", 1.01), ("memo-2", 1.02), ("memo-2", 1.02)):
        run, pairs, candidate = night_with_candidate(storage, locations, name, base_model, tmp_path, scale)
        reports.append(storage.get_json(validate(candidate, pairs, run, locations, gate, storage)))
    first, second, rerun = (report["held_out"]["vector_memo"] for report in reports)
    texts = first["read"] // 2  # what one model reads: the held-out CVs both ways and the audit's variants
    assert first == {"from": None, "recalled": 0, "read": 2 * texts} and texts > len(HELD_OUT) * 2
    assert second == {"from": reports[0]["run"], "recalled": texts, "read": texts}
    assert rerun == {"from": reports[1]["run"], "recalled": 2 * texts, "read": 0}
    assert reports[1]["production_metrics"] == reports[0]["production_metrics"]
    assert reports[1]["bias_audit"]["production"] == reports[0]["bias_audit"]["production"]
    assert reports[2]["candidate_metrics"] == reports[1]["candidate_metrics"]
    assert reports[2]["decision"] == reports[1]["decision"]
    for report in reports:  # what validate wrote, every key declared, reads back as the same JSON
        assert ValidationReport.written(report).to_json() == report


def test_a_cv_erased_while_the_night_ran_is_in_none_of_the_vectors_it_keeps(storage, locations, base_model, tmp_path):
    import io

    import pyarrow.parquet as pq

    from include.matcher.foundations import layout
    from include.matcher.stages.corpus import erasure_secret, key_hash
    from include.matcher.stages.erasure import note_recent_erasures
    from include.matcher.stages.validation import validate

    run, pairs, candidate = night_with_candidate(storage, locations, "erased-night", base_model, tmp_path, 1.01)
    note_recent_erasures({key_hash(erasure_secret(storage, locations), "PILOT/captain.pdf")}, locations, storage)
    validate(candidate, pairs, run, locations, GateConfig(min_improvement=0.0, min_primary=0.0), storage)
    for uri in (layout.Run(run).vector_memo, layout.Run(run).held_out_vectors):
        keys = set(pq.read_table(io.BytesIO(storage.get_bytes(uri))).column("key").to_pylist())
        assert keys == {cv["key"] for cv in HELD_OUT} - {"PILOT/captain.pdf"}, uri


def test_validate_stage_writes_the_refusal_of_a_nan_candidate_into_its_report(
    storage, locations, base_model, tmp_path, caplog
):
    import logging

    from include.matcher.stages.validation import validate

    run, pairs, candidate = night_with_candidate(storage, locations, "nan-night", base_model, tmp_path, "nan")
    with caplog.at_level(logging.INFO):
        report_uri = validate(
            candidate, pairs, run, locations, GateConfig(min_improvement=0.0, min_primary=0.0), storage
        )
    decision = storage.get_json(report_uri)["decision"]
    assert not decision["promote"] and "weight tensors hold NaN" in decision["reason"]
    assert "refused as broken" in caplog.text
