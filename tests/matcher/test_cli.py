"""The CLI as users call it: a subprocess, stdout carrying only the result."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args, env=None, timeout=900):
    result = subprocess.run(
        [sys.executable, "-m", "include.matcher", *args],
        cwd=PROJECT_ROOT, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip().splitlines()


def test_fine_tune_keeps_the_old_commands_flags(tmp_path, demo_folder):
    output = tmp_path / "model"
    lines = run_cli(
        "fine-tune", "--data-root", str(demo_folder / "cvs"), "--jobs-file", str(demo_folder / "job_descriptions.json"),
        "--output", str(output), "--loss", "cosine", "--batch-size", "8", "--epochs", "1",
        "--learning-rate", "3e-5", "--negative-ratio", "0.5",
    )  # fmt: skip
    assert lines[-1] == str(output)
    metadata = [json.loads(line) for line in (output / "training_metadata.jsonl").read_text().splitlines()]
    labels = [row["label"] for row in metadata]
    assert labels.count(0.0) == labels.count(1.0) // 2  # ratio 0.5: one negative per two positives
    config = json.loads((output / "training_config.json").read_text())["config"]
    assert (config["loss"], config["batch_size"], config["learning_rate"]) == ("cosine", 8, 3e-5)


def test_evaluate_prints_metrics_json_last(demo_folder):
    lines = run_cli("evaluate", "--model", "all-MiniLM-L6-v2", "--data-root", str(demo_folder / "cvs"), "--jobs-file", str(demo_folder / "job_descriptions.json"), "--split", "all")
    metrics = json.loads(lines[-1])
    assert 0.0 <= metrics["accuracy@1"] <= 1.0 and metrics["count"] == 30


@pytest.mark.shared_data
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
    run_cli("fine-tune", "--data-root", str(slice_root), "--jobs-file", str(jobs_file), "--output", str(output), "--epochs", "1", "--batch-size", "8")
    metadata = [json.loads(line) for line in (output / "training_metadata.jsonl").read_text().splitlines()]
    assert {row["category"] for row in metadata} <= {"CHEF", "AVIATION", "TEACHER"} and len(metadata) > 10
    assert all(row["source_key"].endswith(".pdf") for row in metadata)
    lines = run_cli("evaluate", "--model", str(output), "--data-root", str(slice_root), "--jobs-file", str(jobs_file), "--split", "all", "--strip-title")
    assert json.loads(lines[-1])["count"] == 24
