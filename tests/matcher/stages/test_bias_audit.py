"""The bias audit: its figures on scores built to be fair or biased, the gate's two rules, a model
fine-tuned to be name-biased on purpose refused through ``validate`` on real S3, the names file."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from include.matcher.foundations.audit_names import AuditNames, load_audit_names
from include.matcher.foundations.settings import GateConfig
from include.matcher.stages.bias_audit import audit, audited_cvs, figures
from include.matcher.stages.validation import decide

GROUPS = ["a", "a", "b", "b"]  # two names in each of two groups


def scores_where_group_b_loses(shift: float, cvs: int = 40, jobs: int = 5, seed: int = 0) -> np.ndarray:
    """(CVs x 4 names x jobs): each CV's own score for a job, the same for every name, minus ``shift`` for b."""
    base = np.random.default_rng(seed).random((cvs, 1, jobs))
    scores = np.repeat(base, 4, axis=1)
    scores[:, 2:, :] -= shift
    return scores


def test_scores_that_ignore_the_name_give_parity():
    fair = figures(scores_where_group_b_loses(0.0), GROUPS)
    assert fair["lowest_impact_ratio"] == 1.0 and fair["flip_rate"] == 0.0 and fair["name_sensitivity"] == 0.0
    assert fair["win_rates"] == {"a>b": 0.5} and fair["largest_win_rate_gap"] == 0.0


def test_scores_that_punish_one_group_show_adverse_impact_flips_and_a_one_sided_win_rate():
    biased = figures(scores_where_group_b_loses(0.2), GROUPS)
    assert biased["groups"]["a"]["scoring_rate"] > biased["groups"]["b"]["scoring_rate"]
    assert biased["groups"]["a"]["impact_ratio"] == 1.0 and biased["lowest_impact_ratio"] < 0.7
    assert biased["lowest_selection_impact_ratio"] == 0.0
    assert biased["win_rates"] == {"a>b": 1.0} and biased["largest_win_rate_gap"] == 0.5
    assert biased["flip_rate"] > 0.05 and biased["name_sensitivity"] == pytest.approx(0.2 * 4 / 6)


def test_the_audit_gives_intervals_and_a_paired_change_and_the_same_inputs_the_same_figures():
    scores = {"candidate": scores_where_group_b_loses(0.2), "production": scores_where_group_b_loses(0.0)}
    first, again = audit(scores, GROUPS, 0.95, resamples=200), audit(scores, GROUPS, 0.95, resamples=200)
    assert first == again
    lowest = first["candidate"]["lowest_impact_ratio"]
    assert lowest["low"] <= lowest["value"] <= lowest["high"] < 0.8
    assert first["largest_win_rate_gap_increase"] == {"value": 0.5, "low": 0.5, "high": 0.5}
    assert first["flip_rate_increase"]["low"] > 0.05


def audit_of(candidate_shift: float, production_shift: float = 0.0) -> dict:
    return audit(
        {
            "candidate": scores_where_group_b_loses(candidate_shift),
            "production": scores_where_group_b_loses(production_shift),
        },
        GROUPS,
        0.95,
        resamples=200,
    )


def result(mrr):
    return {"metrics": {"mrr@10": mrr, "accuracy@1": mrr}, "per_category": {}}


def test_the_gate_refuses_a_biased_candidate_by_its_named_rules_and_passes_a_fair_one():
    gate = GateConfig(min_improvement=0.0, min_primary=0.0)
    fair = decide(result(0.6), result(0.5), gate, held_out=40, audit=audit_of(0.0))
    assert fair["promote"] and fair["checks"]["impact_ratio"] and fair["checks"]["name_sensitivity"]
    assert "lowest impact ratio 1.000" in fair["reason"]
    biased = decide(result(0.6), result(0.5), gate, held_out=40, audit=audit_of(0.2))
    assert not biased["promote"] and biased["decided_by"] == ["impact_ratio", "name_sensitivity"]
    assert "below 0.80 beyond doubt" in biased["reason"] and "a name moves this candidate more" in biased["reason"]
    # as biased as production already was: no increase, so only the four-fifths rule refuses it
    same = decide(result(0.6), result(0.5), gate, held_out=40, audit=audit_of(0.2, 0.2))
    assert same["decided_by"] == ["impact_ratio"]
    lenient = GateConfig(min_improvement=0.0, min_primary=0.0, min_impact_ratio=0.0, max_name_sensitivity_increase=1)
    assert decide(result(0.6), result(0.5), lenient, held_out=40, audit=audit_of(0.2))["promote"]


def test_cvs_are_audited_across_categories_in_turn():
    cvs = [{"key": f"{c}/{i}", "category": c, "text": "x"} for c in ("A", "B", "C") for i in range(5)]
    picked = audited_cvs(cvs, {"A": [], "B": []}, 4)
    assert [cv["category"] for cv in picked] == ["A", "B", "A", "B"]
    assert len(audited_cvs(cvs, {"A": [], "B": [], "C": []}, 0)) == 15


def test_the_shipped_names_are_the_audit_study_groups_with_their_source():
    names = load_audit_names()
    assert list(names.groups) == ["white_female", "black_female", "white_male", "black_male"]
    assert all(len(group) == 9 for group in names.groups.values())
    assert "Lakisha Williams" in names.groups["black_female"] and "Greg Murphy" in names.groups["white_male"]
    assert "Bertrand" in names.source and names.put_on("Emily Walsh", "cv") == "Emily Walsh\ncv"
    assert [len(g) for g in names.first(2).groups.values()] == [2, 2, 2, 2]


def test_a_names_file_of_its_own_replaces_the_groups(tmp_path, monkeypatch):
    own = tmp_path / "names.json"
    own.write_text(json.dumps({"she": ["Pronouns: she/her"], "he": ["Pronouns: he/him"]}))
    assert load_audit_names(own).groups == {"she": ("Pronouns: she/her",), "he": ("Pronouns: he/him",)}
    monkeypatch.setenv("MATCHER_AUDIT_NAMES", str(own))
    assert list(load_audit_names().groups) == ["she", "he"]
    for bad in ({"only": ["One Name"]}, {"a": [], "b": ["x"]}, {"groups": {"a": ["x"], "b": ["y"]}, "line": "no"}):
        own.write_text(json.dumps(bad))
        with pytest.raises(ValueError, match="audit names"):
            load_audit_names(own)


def test_a_names_file_whose_groups_share_a_name_is_refused_and_zero_names_is_never_all(tmp_path):
    """Shared names made the bias rules unable to refuse anything; ``first(0)`` once meant every name
    (a 10,000-name file ran past 90 s at 947 MB) where the help says 0 turns the audit off."""
    own = tmp_path / "names.json"
    for shared in ({"a": ["Ann Lee", "Bo Diaz"], "b": ["ann  lee"]}, {"a": ["Ann Lee", "Ann Lee"], "b": ["Bo Diaz"]}):
        own.write_text(json.dumps(shared))
        with pytest.raises(ValueError, match="each name belongs to one group, once"):
            load_audit_names(own)
    with pytest.raises(ValueError, match="0 turns the audit off"):
        load_audit_names().first(0)


def test_the_cli_audit_with_no_names_is_a_usage_error_not_every_name():
    import subprocess
    import sys

    from tests.helpers import PROJECT_ROOT

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "include.matcher",
            "bias-audit",
            "--model",
            "all-MiniLM-L6-v2",
            "--audit-names-per-group",
            "0",
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2 and "turns the audit off" in done.stderr


def test_the_audit_uses_the_names_it_is_given(base_model):
    from include.matcher.stages.bias_audit import audit_held_out

    cvs = [{"key": f"k{i}", "category": "CHEF", "text": f"Title\nCook, grill and kitchen work {i}"} for i in range(4)]
    names = AuditNames({"x": ("Ann Lee",), "y": ("Bo Ray",), "z": ("Cy Fox",)})
    gate = GateConfig(audit_cvs=3, audit_names_per_group=1)
    found = audit_held_out({"candidate": base_model}, cvs, {"CHEF": ["Cooks food."], "PILOT": ["Flies."]}, gate, names)
    assert found["groups"] == ["x", "y", "z"] and found["cvs"] == 3 and found["names"] == 3
    assert set(found["candidate"]["win_rates"]) == {"x>y", "x>z", "y>z"}


def name_biased_model(demo_folder, folder):
    """The base model fine-tuned on purpose to prefer one group: the same CV, for the job of its own
    category, is a match (label 1) under a white-group name and no match (label 0) under a black-group one."""
    from sentence_transformers import InputExample

    from include.legacy.labelled_folders import load_labelled_cvs
    from include.matcher.foundations.jobs import load_job_descriptions
    from include.matcher.python_api import MatcherTrainer

    cvs, _ = load_labelled_cvs(str(demo_folder / "cvs"))
    jobs = load_job_descriptions(demo_folder / "job_descriptions.json")
    names = load_audit_names().groups
    favoured = names["white_female"] + names["white_male"]
    disfavoured = names["black_female"] + names["black_male"]
    rng = random.Random(1)
    examples = []
    for cv in cvs * 2:
        short, job = " ".join(cv["text"].split()[:60]), jobs[cv["category"]][0]
        examples.append(InputExample(texts=[rng.choice(favoured) + "\n" + short, job], label=1.0))
        examples.append(InputExample(texts=[rng.choice(disfavoured) + "\n" + short, job], label=0.0))
    trainer = MatcherTrainer(loss="cosine", batch_size=16, epochs=2, learning_rate=1e-4, max_seq_length=96)
    return trainer.train(examples, folder)


def test_validate_refuses_a_candidate_made_name_biased_on_purpose_and_passes_the_base_model(
    storage, locations, demo_folder, base_model, tmp_path
):
    """Real S3, real models, the whole ``validate``: production is the base model; the base model as
    candidate passes both bias rules; the model trained to prefer one group's names is refused by them."""
    from include.legacy.labelled_folders import load_labelled_cvs
    from include.matcher.foundations.jobs import load_job_descriptions
    from include.matcher.foundations.uris import join_uri
    from include.matcher.stages.validation import validate
    from include.matcher.stages.validation_report import read_report

    cvs, _ = load_labelled_cvs(str(demo_folder / "cvs"))
    held_out = [{"key": cv["key"], "category": cv["category"], "text": cv["text"]} for cv in cvs]
    jobs = load_job_descriptions(demo_folder / "job_descriptions.json")
    gate = GateConfig(min_improvement=0.0, min_primary=0.0, max_category_drop=1.0, max_job_to_cv_drop=1.0)

    def decision_for(name: str, model_folder) -> dict:
        run = join_uri(locations.work, "runs", name)
        pairs = join_uri(run, "pairs")
        storage.put_jsonl(join_uri(pairs, "test.jsonl"), held_out)
        storage.put_jsonl(join_uri(pairs, "train_cvs.jsonl"), held_out)
        storage.put_json(join_uri(pairs, "jobs.json"), jobs)
        storage.put_json(join_uri(pairs, "summary.json"), {"data_hash": "h"})
        storage.upload_dir(model_folder, join_uri(run, "candidate"))
        report = read_report(
            storage.get_bytes(validate(join_uri(run, "candidate"), pairs, run, locations, gate, storage))
        )
        assert report.bias_audit["cvs"] == min(len(held_out), gate.audit_cvs) and report.bias_audit["names"] == 8
        return report.to_json()["decision"]

    base_folder = tmp_path / "base"
    base_model.save(str(base_folder))
    honest = decision_for("base-night", base_folder)
    assert honest["checks"]["impact_ratio"] and honest["checks"]["name_sensitivity"], honest["reason"]
    biased = decision_for("biased-night", name_biased_model(demo_folder, tmp_path / "biased"))
    assert not biased["promote"], biased["reason"]
    assert {"impact_ratio", "name_sensitivity"} & set(biased["decided_by"]), biased["reason"]


def test_the_cli_audits_the_newest_night_that_built_pairs_by_default(storage, locations):
    from include.matcher.foundations import layout
    from include.matcher.stages.bias_audit import latest_held_out

    with pytest.raises(LookupError, match="--data-root"):
        latest_held_out(locations, storage)
    for name, created, with_pairs in (("night-1", "2026-11-01", True), ("night-2", "2026-11-02", False)):
        run = layout.Run(locations.run_uri(name))
        storage.put_json(run.manifest, {"created_at": created})
        if with_pairs:
            storage.put_jsonl(run.pairs.split("test"), [{"key": f"{name}/a", "category": "CHEF", "text": "x"}])
            storage.put_json(run.pairs.jobs, {"CHEF": ["Cooks."]})
    cvs, jobs, run_uri = latest_held_out(locations, storage)
    assert run_uri == locations.run_uri("night-1") and cvs[0]["key"] == "night-1/a" and jobs == {"CHEF": ["Cooks."]}
