"""The CLI as users call it: a subprocess, stdout carrying only the result."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def cli(*args, env=None, timeout=900) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "include.matcher", *args],
        cwd=PROJECT_ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_cli(*args, env=None, timeout=900):
    result = cli(*args, env=env, timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip().splitlines()


@pytest.mark.model
def test_fine_tune_keeps_the_old_commands_flags(tmp_path, demo_folder):
    output = tmp_path / "model"
    lines = run_cli(
        "fine-tune",
        "--data-root",
        str(demo_folder / "cvs"),
        "--jobs-file",
        str(demo_folder / "job_descriptions.json"),
        "--output",
        str(output),
        "--loss",
        "cosine",
        "--batch-size",
        "8",
        "--epochs",
        "1",
        "--learning-rate",
        "3e-5",
        "--negative-ratio",
        "0.5",
    )
    assert lines[-1] == str(output)
    metadata = [json.loads(line) for line in (output / "training_metadata.jsonl").read_text().splitlines()]
    labels = [row["label"] for row in metadata]
    assert labels.count(0.0) == labels.count(1.0) // 2  # ratio 0.5: one negative per two positives
    config = json.loads((output / "training_config.json").read_text())["config"]
    assert (config["loss"], config["batch_size"], config["learning_rate"]) == ("cosine", 8, 3e-5)


def test_evaluate_prints_metrics_json_last(demo_folder, base_model):
    from include.legacy.labelled_folders import load_labelled_cvs
    from include.matcher.foundations.evaluation import evaluate_model
    from include.matcher.foundations.jobs import load_job_descriptions

    lines = run_cli(
        "evaluate",
        "--model",
        "all-MiniLM-L6-v2",
        "--data-root",
        str(demo_folder / "cvs"),
        "--jobs-file",
        str(demo_folder / "job_descriptions.json"),
        "--split",
        "all",
    )
    metrics = json.loads(lines[-1])
    cvs, _ = load_labelled_cvs(str(demo_folder / "cvs"))
    expected = evaluate_model(base_model, cvs, load_job_descriptions(demo_folder / "job_descriptions.json"))
    assert metrics["strip_title"] is False and metrics["count"] == 30
    assert metrics["accuracy@1"] == pytest.approx(expected["with_title"]["metrics"]["accuracy@1"], abs=1e-6)


@pytest.mark.shared_data
@pytest.mark.model
def test_fine_tune_on_a_slice_of_the_real_resumes(tmp_path, shared_data):
    """Three categories, eight resumes each, from ../shared/data/resumes (the Kaggle layout)."""
    slice_root = tmp_path / "data"
    for category in ("CHEF", "AVIATION", "TEACHER"):
        (slice_root / category).mkdir(parents=True)
        for pdf in sorted((shared_data / "resumes" / category).glob("*.pdf"))[:8]:
            (slice_root / category / pdf.name).symlink_to(pdf)
    jobs = json.loads((shared_data / "job_descriptions.json").read_text())
    jobs_file = tmp_path / "jobs.json"
    jobs_file.write_text(json.dumps({c: jobs[c] for c in ("CHEF", "AVIATION", "TEACHER")}))
    output = tmp_path / "model"
    run_cli(
        "fine-tune",
        "--data-root",
        str(slice_root),
        "--jobs-file",
        str(jobs_file),
        "--output",
        str(output),
        "--epochs",
        "1",
        "--batch-size",
        "8",
    )
    metadata = [json.loads(line) for line in (output / "training_metadata.jsonl").read_text().splitlines()]
    assert {row["category"] for row in metadata} <= {"CHEF", "AVIATION", "TEACHER"} and len(metadata) > 10
    assert all(row["source_key"].endswith(".pdf") for row in metadata)
    lines = run_cli(
        "evaluate",
        "--model",
        str(output),
        "--data-root",
        str(slice_root),
        "--jobs-file",
        str(jobs_file),
        "--split",
        "all",
        "--strip-title",
    )
    assert json.loads(lines[-1])["count"] == 24


def cli_error(*args, env=None):
    """Run a command that must fail as a user error: exit 2, one line ``error: ...``, no traceback."""
    result = cli(*args, env=env, timeout=300)
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    return errors[0]


def test_user_errors_are_one_line_with_exit_status_2(tmp_path, s3_server, locations):
    env = {var: getattr(locations, name) for name, var in locations.ENV.items()}
    missing = f"{locations.work}/runs/nope/manifest.json"
    assert cli_error("parse", "--manifest", missing, "--run-id", "nope", env=env) == f"error: no object at {missing}"
    assert "does not exist" in cli_error("upload", str(tmp_path / "no-such-folder"), "--to", "cvs", env=env)
    for run_id in (".", ".."):
        assert "cannot name a run folder" in cli_error("ingest", "--run-id", run_id, env=env)
    broken_jobs = tmp_path / "jobs.json"
    broken_jobs.write_text("{not json")
    assert "not valid JSON" in cli_error(
        "fine-tune", "--data-root", str(tmp_path), "--jobs-file", str(broken_jobs), "--output", str(tmp_path / "m")
    )
    assert "learning_rate" in cli_error(
        "fine-tune",
        "--data-root",
        str(tmp_path),
        "--jobs-file",
        str(broken_jobs),
        "--output",
        str(tmp_path / "m"),
        "--learning-rate",
        "inf",
    )


def test_evaluate_strip_title_strips_exactly_one_line(tmp_path, capfd):
    """Line 1 is a title, line 2 the only line that tells the CVs apart: one strip keeps it, two would not."""
    from include.matcher.cli import main

    jobs = {
        "CHEF": "Cook who prepares meals in a restaurant kitchen.",
        "PILOT": "Aircraft pilot who flies commercial airplanes.",
    }
    (tmp_path / "jobs.json").write_text(json.dumps(jobs))
    lines = {
        "CHEF": [
            "Grill cook preparing steaks and sauces in a busy restaurant kitchen.",
            "Pastry cook baking bread and desserts for a hotel restaurant.",
        ],
        "PILOT": [
            "Airline captain flying Airbus A320 passenger jets.",
            "First officer flying commercial Boeing 737 airplanes.",
        ],
    }
    for category, distinctive in lines.items():
        (tmp_path / "cvs" / category).mkdir(parents=True)
        for i, line in enumerate(distinctive):
            text = f"Candidate profile {i}\n{line}\n" + "Reliable, organised and punctual; references on request. " * 3
            (tmp_path / "cvs" / category / f"{i}.txt").write_text(text)
    assert (
        main(
            [
                "evaluate",
                "--model",
                "all-MiniLM-L6-v2",
                "--data-root",
                str(tmp_path / "cvs"),
                "--jobs-file",
                str(tmp_path / "jobs.json"),
                "--split",
                "all",
                "--strip-title",
            ]
        )
        == 0
    )
    metrics = json.loads(capfd.readouterr().out.strip().splitlines()[-1])
    assert metrics["strip_title"] is True and metrics["accuracy@1"] == 1.0, metrics


def test_the_documented_settings_table_is_the_generated_one():
    from include.matcher.foundations.settings import settings_table

    page = (PROJECT_ROOT / "docs" / "settings.md").read_text()
    table = page.split("<!-- settings:start -->\n", 1)[1].split("\n<!-- settings:end -->", 1)[0]
    assert table == settings_table(), (
        "docs/settings.md's settings table is stale: paste `python -m include.matcher settings` between its markers"
    )


def test_cli_flags_and_dag_params_come_from_the_same_settings():
    from dataclasses import fields

    from include.airflow_support import dag_params
    from include.matcher.cli import build_parser
    from include.matcher.foundations.settings import DataOptions, GateConfig, TrainingConfig, run_setting_fields

    params = dag_params()
    assert list(params) == [f.name for _, f in run_setting_fields()]
    assert params["learning_rate"].schema["exclusiveMinimum"] == 0 and params["loss"].schema["enum"] == [
        "cosine",
        "multiple_negatives",
        "triplet",
    ]
    assert {params[f.name].schema["section"] for f in fields(GateConfig)} == {"Gate"} and params["raw_prefix"].schema[
        "section"
    ] == "Data"
    tune = build_parser().parse_args(
        ["fine-tune", "--pairs", "p", "--run-id", "r", "--no-strip-titles", "--epochs", "2", "--batch-size", "4"]
    )
    config = TrainingConfig.from_mapping(vars(tune))
    assert (config.strip_titles, config.epochs, config.batch_size, config.select_best) == (False, 2, 4, True)
    validate = build_parser().parse_args(
        ["validate", "--candidate", "c", "--pairs", "p", "--run-id", "r", "--max-category-drop", "0.2"]
    )
    assert GateConfig.from_mapping(vars(validate)).max_category_drop == 0.2
    assert DataOptions().raw_prefix == ""


def test_a_misspelt_param_is_an_error_not_ignored():
    from include.matcher.foundations.settings import PipelineConfig

    with pytest.raises(ValueError, match=r"unknown run setting\(s\) \['learning_rat'\]"):
        PipelineConfig().with_params({"learning_rat": 0.1})
    assert (
        PipelineConfig()
        .with_params({"learning_rate": "0.001", "strip_titles": "false", "raw_prefix": "s3://b/p"})
        .training.strip_titles
        is False
    )


def test_starting_the_embedded_s3_on_a_taken_port_says_so(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # Its own data folder: the project's embedded S3 may be running (after `make demo`).
        error = cli_error("s3", "start", "--port", str(port), "--data-dir", str(tmp_path / "s3"))
        assert f"port {port} on 127.0.0.1 is already in use" in error


def test_bias_audit_prints_the_table_and_ends_with_its_figures_for_a_names_file_of_its_own(
    demo_folder, base_model, tmp_path
):
    from include.legacy.labelled_folders import load_labelled_cvs
    from include.matcher.foundations.audit_names import load_audit_names
    from include.matcher.foundations.jobs import load_job_descriptions
    from include.matcher.foundations.settings import GateConfig
    from include.matcher.stages.bias_audit import audit_held_out, headline

    names = tmp_path / "names.json"
    names.write_text(json.dumps({"group_a": ["Ann Lee", "Amy Low"], "group_b": ["Bob Ray", "Ben Roe"]}))
    flags = ["--audit-cvs", "12", "--audit-names-per-group", "2"]
    lines = run_cli(
        "bias-audit",
        "--model",
        "all-MiniLM-L6-v2",
        "--data-root",
        str(demo_folder / "cvs"),
        "--jobs-file",
        str(demo_folder / "job_descriptions.json"),
        "--names",
        str(names),
        "--json",
        *flags,
    )
    figures = json.loads(lines[-1])
    assert set(figures["groups"]) == {"group_a", "group_b"} and figures["cvs"] == 12 and figures["names"] == 4
    assert {"scoring_rate", "selection_rate", "impact_ratio"} == set(figures["groups"]["group_a"])
    assert any(line.startswith("group_b") for line in lines) and any("flip rate" in line for line in lines)
    cvs, _ = load_labelled_cvs(str(demo_folder / "cvs"))
    jobs = load_job_descriptions(demo_folder / "job_descriptions.json")
    expected = audit_held_out(
        {"candidate": base_model}, cvs, jobs, GateConfig(audit_cvs=12, audit_names_per_group=2), load_audit_names(names)
    )
    assert figures["lowest_impact_ratio"] == pytest.approx(headline(expected)["lowest_impact_ratio"], abs=1e-3)
    assert figures["flip_rate"] == pytest.approx(headline(expected)["flip_rate"], abs=1e-3)


def test_a_fresh_shell_gets_one_line_that_says_what_to_run_and_s3_env_finds_the_running_port(s3_server):
    """The README's commands in a shell without S3 settings: one line naming the command that sets
    them, not botocore's traceback; ``s3 env`` points at the port the server was started on."""
    bare = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    result = subprocess.run(
        [sys.executable, "-m", "include.matcher", "production"],
        cwd=PROJECT_ROOT,
        env={**bare, "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_CONFIG_FILE": "/nonexistent"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: this shell has no S3 credentials") and "s3 env" in last

    port = s3_server.endpoint.rsplit(":", 1)[1]
    lines = run_cli("s3", "env", "--data-dir", str(s3_server.data_dir))
    assert f"AWS_ENDPOINT_URL_S3=http://127.0.0.1:{port}" in lines[-1]  # not the default 8333


def test_help_groups_the_commands_with_examples_and_each_flag_says_what_it_does():
    top = run_cli("--help")
    text = "\n".join(top)
    for group in ("Set up and try it:", "Run a night, stage by stage", "Search and inspect:", "Operate:"):
        assert group in text
    assert "examples:" in text and "Other:" not in text  # every command sits in a group
    audit = "\n".join(run_cli("bias-audit", "--help"))
    assert "confidence of the audit's bootstrap intervals" in audit and "lower bound must clear" not in audit


def test_the_refresh_stage_publishes_from_a_trial_prefix_only_when_told(storage, locations, cli_env, tmp_path):
    """CLI parity with the DAG's params: a run on another raw prefix leaves search as it is unless
    ``--publish-from-other-prefix`` says otherwise."""
    from include.matcher.foundations.pointers import read_current
    from include.matcher.foundations.uris import join_uri
    from tests.helpers import BEATEN_VERSION, put_a_model_every_candidate_beats_in_production

    put_a_model_every_candidate_beats_in_production(storage, locations, tmp_path / "zeroed")
    storage.put_json(locations.jobs_file, {"CHEF": ["Cook in a kitchen."], "PILOT": ["Airline pilot."]})
    text_uri = join_uri(locations.work, "texts", "chef.json")
    storage.put_json(text_uri, {"text": "Grill cook, steaks and burgers"})
    corpus = join_uri(locations.work, "runs", "trial-1", "corpus.jsonl")
    storage.put_jsonl(corpus, [{"key": "CHEF/a.txt", "category": "CHEF", "text_uri": text_uri, "text_hash": "a"}])
    trial = ["--corpus", corpus, "--run-id", "trial-1", "--raw-prefix", locations.raw_cvs.rstrip("/") + "-trial"]

    left = run_cli("refresh-embeddings", *trial, env=cli_env)
    assert json.loads(left[-1]) == {"published": None, "shards": 0}
    assert read_current(storage, locations.embeddings) is None
    run_cli("refresh-embeddings", *trial, "--publish-from-other-prefix", env=cli_env)
    assert read_current(storage, locations.embeddings)["version"] == BEATEN_VERSION
