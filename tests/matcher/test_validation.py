import random


from include.matcher.evaluation import evaluate_model
from include.matcher.settings import GateConfig, SplitConfig, TrainingConfig
from include.matcher.validation import decide


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
    from include.matcher.jobs import load_job_descriptions
    from include.matcher.models import load_model
    from include.matcher.pairs import build_examples, split_corpus
    from include.matcher.sources import load_labelled_cvs
    from include.matcher.training import train_model

    cvs, _ = load_labelled_cvs(str(demo_folder / "cvs"))
    jobs = load_job_descriptions(demo_folder / "job_descriptions.json")
    by_split, _ = split_corpus(cvs, jobs, SplitConfig(validation_fraction=0.0, test_fraction=0.4))
    rng = random.Random(0)
    shuffled = [{**cv, "category": rng.choice(sorted(jobs))} for cv in by_split["train"]]
    examples = build_examples(shuffled, jobs, "multiple_negatives", 1.0, seed=0)
    damaged = train_model(examples.rows, examples.metadata, TrainingConfig(epochs=4, learning_rate=1e-4, batch_size=8), tmp_path / "damaged")

    held_out = by_split["test"] + by_split["validation"]
    candidate = evaluate_model(load_model(str(damaged), device="cpu"), held_out, jobs)
    production = evaluate_model(base_model, held_out, jobs)
    decision = decide(candidate, production, GateConfig(min_improvement=0.0, min_category_support=3), held_out=len(held_out))
    assert candidate["metrics"]["mrr@10"] < production["metrics"]["mrr@10"], (candidate["metrics"], production["metrics"])
    assert not decision["promote"], decision
