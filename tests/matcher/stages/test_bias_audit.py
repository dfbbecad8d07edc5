"""The bias audit: its figures on scores built to be fair or biased, the gate's three rules, names never
seen in every placement through the product path and the model alone, a model fine-tuned to be
name-biased on purpose refused through ``validate`` on real S3, the names file, the CLI's flags."""

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
    assert not biased["promote"] and biased["decided_by"] == ["impact_ratio", "win_rate_gap", "name_sensitivity"]
    assert "below 0.80 beyond doubt" in biased["reason"] and "a name moves this candidate more" in biased["reason"]
    assert "beyond the allowed gap 0.05" in biased["reason"]
    # as biased as production already was: no increase, so the relative rule lets it be; the absolute ones do not
    same = decide(result(0.6), result(0.5), gate, held_out=40, audit=audit_of(0.2, 0.2))
    assert same["decided_by"] == ["impact_ratio", "win_rate_gap"]
    lenient = GateConfig(
        min_improvement=0.0,
        min_primary=0.0,
        min_impact_ratio=0.0,
        max_name_sensitivity_increase=1,
        max_win_rate_gap=0.5,
    )
    assert decide(result(0.6), result(0.5), lenient, held_out=40, audit=audit_of(0.2))["promote"]


def test_a_slight_bias_production_shared_is_refused_by_the_absolute_win_rate_rule_alone():
    """A name that shifts every score a little: four-fifths holds, nothing grew since production, yet one
    group's variants win every comparison: the absolute rule refuses it."""
    gate = GateConfig(min_improvement=0.0, min_primary=0.0)
    slight = audit_of(0.01, 0.01)
    assert slight["candidate"]["lowest_impact_ratio"]["high"] >= 0.8 and slight["candidate"]["win_rates"]["a>b"] == 1
    decision = decide(result(0.6), result(0.5), gate, held_out=40, audit=slight)
    assert decision["decided_by"] == ["win_rate_gap"], decision["reason"]
    assert decide(
        result(0.6),
        result(0.5),
        GateConfig(min_improvement=0.0, min_primary=0.0, max_win_rate_gap=0.5),
        held_out=40,
        audit=slight,
    )["promote"]


def test_a_model_that_learned_a_name_bias_is_refused_by_the_model_alone_even_when_the_product_path_is_fair():
    """Redaction hides the names from the product path, so it reads fair; the model alone shows what the
    candidate learned, and the four-fifths rule reads both."""
    from include.matcher.stages.bias_audit import worst_of_placements

    gate = GateConfig(min_improvement=0.0, min_primary=0.0)
    fair_path = audit_of(0.0)
    hidden = {**fair_path, "model_alone": worst_of_placements({"top": audit_of(0.0), "contact": audit_of(0.2)})}
    assert hidden["model_alone"]["worst_of"]["largest_win_rate_gap"] == "contact"
    decision = decide(result(0.6), result(0.5), gate, held_out=40, audit=hidden)
    assert decision["decided_by"] == ["impact_ratio"] and "(the model alone) below 0.80" in decision["reason"]
    # its gap grew by the model alone, as fine-tuning the defaults grows it: reported, not a refusal
    grown = {**fair_path, "model_alone": worst_of_placements({"top": audit_of(0.01)})}
    assert grown["model_alone"]["candidate"]["lowest_impact_ratio"]["high"] >= 0.8
    assert grown["model_alone"]["largest_win_rate_gap_increase"]["low"] > 0.05
    assert decide(result(0.6), result(0.5), gate, held_out=40, audit=grown)["promote"]
    assert decide(result(0.6), result(0.5), gate, held_out=40, audit=fair_path)["promote"]


def test_the_headline_is_each_figure_at_its_worst_placement():
    from include.matcher.stages.bias_audit import worst_of_placements

    worst = worst_of_placements({"top": audit_of(0.05), "contact": audit_of(0.2), "closing": audit_of(0.0)})
    assert worst["worst_of"]["lowest_impact_ratio"] == "contact" and worst["worst_of"]["flip_rate"] == "contact"
    assert worst["candidate"]["lowest_impact_ratio"] == audit_of(0.2)["candidate"]["lowest_impact_ratio"]
    assert worst["largest_win_rate_gap_increase"] == audit_of(0.2)["largest_win_rate_gap_increase"]


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


# Groups of names the project ships nowhere (not in audit_names.json nor benchmarks/unseen_names.json).
NEVER_SEEN = AuditNames(
    {
        "west_african": ("Oluwaseun Adeyemi", "Chidinma Okafor"),
        "polish": ("Zbigniew Wiśniewski", "Agnieszka Wójcik"),
        "maori": ("Aroha Ngata", "Tane Parata"),
    }
)
NURSE_CVS = [
    {
        "key": f"n{i}",
        "category": category,
        "text": f"{category}\nSummary\n{body} Worked {i + 2} years.\nSkills\nScheduling, reporting",
    }
    for i, (category, body) in enumerate(
        [
            ("NURSE", "Registered nurse in intensive care; ventilators, triage and patient education."),
            ("CHEF", "Line cook then sous chef; grill, sauces, kitchen hygiene and ordering."),
            ("PILOT", "Commercial pilot, 3,000 hours on narrow-body jets; crew resource management."),
            ("NURSE", "Community nurse; wound care, vaccinations and home visits for the elderly."),
            ("CHEF", "Pastry chef; laminated doughs, plated desserts and a team of four."),
            ("PILOT", "Flight instructor and charter pilot; instrument ratings and safety briefings."),
        ]
    )
]
NURSE_JOBS = {
    "CHEF": ["Chefs direct the preparation and cooking of food."],
    "NURSE": ["Registered nurses assess patient health problems and provide care."],
    "PILOT": ["Pilots fly and navigate airplanes for airlines."],
}


def test_names_never_seen_in_every_placement_do_not_move_a_candidate_on_the_product_path(base_model):
    """The whole audit as the gate runs it: on the product path every pair of groups wins exactly half
    and no name flips a CV, in each placement; the model alone still reads the names (top, contact),
    and the placebo's edits do move it: the audit can tell."""
    from include.matcher.stages.bias_audit import audit_held_out

    gate = GateConfig(audit_cvs=6, audit_names_per_group=2)
    found = audit_held_out({"candidate": base_model}, NURSE_CVS, NURSE_JOBS, gate, NEVER_SEEN)
    assert found["reads"] == "redacted" and set(found["by_placement"]) == {"top", "contact", "closing"}
    for placement, audits in found["by_placement"].items():
        product = audits["product"]["candidate"]
        assert set(product["win_rates"].values()) == {0.5}, placement
        assert product["flip_rate"]["value"] == 0 and product["name_sensitivity"]["value"] == 0, placement
    for placement in ("top", "contact"):
        assert found["by_placement"][placement]["model_alone"]["candidate"]["name_sensitivity"]["value"] > 0
    assert found["placebo"]["candidate"]["name_sensitivity"]["value"] > 0
    assert found["candidate"]["largest_win_rate_gap"]["value"] == 0  # the headline: the product path
    assert found["model_alone"]["candidate"]["largest_win_rate_gap"]["value"] > 0


def test_the_cli_audits_one_placement_and_the_model_alone(cli_env, tmp_path, demo_folder):
    import subprocess
    import sys

    from tests.helpers import PROJECT_ROOT

    names = tmp_path / "names.json"
    names.write_text(json.dumps({g: list(n) for g, n in NEVER_SEEN.groups.items()}))
    done = subprocess.run(
        [
            sys.executable, "-m", "include.matcher", "bias-audit", "--model", "all-MiniLM-L6-v2",
            "--data-root", str(demo_folder / "cvs"), "--jobs-file", str(demo_folder / "job_descriptions.json"),
            "--names", str(names), "--audit-cvs", "6", "--audit-names-per-group", "1", "--confidence", "0",
            "--placement", "contact", "--model-only", "--json",
        ],
        cwd=PROJECT_ROOT, env=cli_env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    figures_of = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures_of["reads"] == "model alone" and list(figures_of["by_placement"]) == ["contact"]
    assert list(figures_of["by_placement"]["contact"]) == ["model_alone"]
    assert figures_of["largest_win_rate_gap"] > 0  # the model alone reads the e-mail made of the name
    assert "contact    model alone" in done.stdout


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
    storage, locations, demo_folder, base_model, tmp_path, monkeypatch
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
    checks = honest["checks"]
    assert checks["impact_ratio"] and checks["name_sensitivity"] and checks["win_rate_gap"], honest["reason"]
    biased_folder = name_biased_model(demo_folder, tmp_path / "biased")
    # redaction hides the names from the product path; the model alone shows what it learned: four-fifths
    biased = decision_for("biased-night", biased_folder)
    assert not biased["promote"] and "impact_ratio" in biased["decided_by"], biased["reason"]
    assert "(the model alone) below 0.80" in biased["reason"]
    # a deployment reading whole CVs: the absolute rule refuses it too, whatever production did
    monkeypatch.setenv("MATCHER_REDACT_IDENTIFIERS", "false")
    unredacted = decision_for("biased-night-unredacted", biased_folder)
    assert {"win_rate_gap", "name_sensitivity"} <= set(unredacted["decided_by"]), unredacted["reason"]


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
