import json

import pytest

from include.matcher.foundations.settings import TrainingConfig
from include.matcher.stages.model_card import TrainingStats
from include.matcher.stages.pairs import build_examples
from include.matcher.stages.training import train_model

JOBS = {
    "CHEF": ["Cook preparing meals in a restaurant kitchen."],
    "PILOT": ["Pilot flying commercial aircraft."],
    "NURSE": ["Nurse caring for patients in a hospital."],
}
CVS = [
    {"key": f"{c}/{i}", "category": c, "text": t}
    for i, (c, t) in enumerate(
        [
            ("CHEF", "Grill cook at a steakhouse"),
            ("CHEF", "Pastry chef, breads and cakes"),
            ("PILOT", "First officer on A320 jets"),
            ("PILOT", "Helicopter pilot, 2,000 hours"),
            ("NURSE", "ICU nurse, ventilated patients"),
            ("NURSE", "Midwife on a maternity ward"),
        ]
    )
]


@pytest.mark.parametrize("loss", ["cosine", "multiple_negatives", "triplet"])
def test_each_loss_trains_and_writes_metadata_beside_the_model(loss, tmp_path):
    examples = build_examples(CVS, JOBS, loss, 1.0, seed=1)
    config = TrainingConfig(loss=loss, epochs=1, batch_size=4, max_seq_length=64)
    out = train_model(examples.rows, examples.metadata, config, tmp_path / "model")
    assert (out / "model.safetensors").exists() and (out / "README.md").exists()
    metadata = [json.loads(line) for line in (out / "training_metadata.jsonl").read_text().splitlines()]
    assert metadata == examples.metadata
    stats = json.loads((out / "training_config.json").read_text())
    assert stats["config"]["loss"] == loss and stats["examples"] == len(examples.rows)
    assert TrainingStats.written(stats).to_json() == stats  # every key training wrote is declared, read back the same


def test_training_moves_the_weights(tmp_path, base_model):
    examples = build_examples(CVS, JOBS, "multiple_negatives", 1.0, seed=1)
    out = train_model(
        examples.rows,
        examples.metadata,
        TrainingConfig(epochs=2, batch_size=3, learning_rate=1e-4, max_seq_length=64),
        tmp_path / "m",
    )
    from include.matcher.foundations.models import load_model

    tuned = load_model(str(out), device="cpu")
    before = base_model.encode(["Grill cook at a steakhouse"])
    after = tuned.encode(["Grill cook at a steakhouse"])
    assert abs(before - after).max() > 1e-4


def test_empty_training_set_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="no training examples"):
        train_model([], [], TrainingConfig(), tmp_path)


def test_config_validation():
    with pytest.raises(ValueError, match="loss must be one of"):
        TrainingConfig(loss="hinge")
    with pytest.raises(ValueError, match="negative_ratio must be at least 0"):
        TrainingConfig(negative_ratio=-1)


@pytest.mark.s3
def test_a_killed_training_resumes_from_its_last_s3_checkpoint(storage, locations):
    """Kill the fine-tune stage after its first checkpoint; the retry resumes there, not at step 0."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    from include.matcher.foundations.uris import join_uri

    run_id = "resume-test"
    run = locations.run_uri(run_id)
    pairs = join_uri(run, "pairs")
    examples = build_examples(CVS * 8, JOBS, "multiple_negatives", 1.0, seed=1)
    storage.put_jsonl(join_uri(pairs, "train.jsonl"), examples.rows)
    storage.put_jsonl(join_uri(pairs, "training_metadata.jsonl"), examples.metadata)
    command = [
        sys.executable,
        "-m",
        "include.matcher",
        "fine-tune",
        "--pairs",
        pairs,
        "--run-id",
        run_id,
        "--batch-size",
        "2",
        "--epochs",
        "2",
        "--checkpoint-steps",
        "4",
    ]
    env = {**os.environ, "MATCHER_WORK_URI": locations.work}
    root = Path(__file__).resolve().parents[3]

    first = subprocess.Popen(
        command, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    latest = join_uri(run, "checkpoints", "latest.json")
    deadline = time.monotonic() + 300
    while not storage.exists(latest) and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.2)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    assert storage.exists(latest), first.stderr.read().decode()[-2000:]
    step = storage.get_json(latest)["step"]
    # Only the latest checkpoint is kept on S3 (each is model + optimizer state).
    folders = {
        info.key.split("/checkpoints/", 1)[1].split("/", 1)[0] for info in storage.list(join_uri(run, "checkpoints"))
    }
    assert f"checkpoint-{step}" in folders and len(folders - {"latest.json"}) <= 2  # the latest, and one uploading
    assert not storage.exists(join_uri(run, "candidate", "model.safetensors"))

    second = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"resuming from step {step}" in second.stderr
    stats = json.loads(storage.get_bytes(join_uri(run, "candidate", "training_config.json")))
    assert stats["resumed_from"] == f"checkpoint-{step}"
    assert stats["checkpoint_uploads"]["count"] >= 1 and stats["checkpoint_uploads"]["waited_seconds"] >= 0
    assert storage.exists(join_uri(run, "candidate", "model.safetensors"))
    assert storage.list(join_uri(run, "checkpoints")) == []  # the candidate is on S3: checkpoints are dropped


@pytest.mark.model
def test_the_best_checkpoint_by_validation_metric_is_kept_not_the_last(tmp_path):
    """A run whose later steps get worse (a very high learning rate) keeps its best-scoring checkpoint."""
    validation = [
        {"key": f"v{i}", "category": c, "text": f"{c.title()} CV\n{t}"}
        for i, (c, t) in enumerate(
            [
                ("CHEF", "Sous chef running the grill"),
                ("PILOT", "Captain on long-haul jets"),
                ("NURSE", "Night nurse on a surgical ward"),
            ]
        )
    ]
    examples = build_examples(CVS * 4, JOBS, "multiple_negatives", 1.0, seed=1)
    config = TrainingConfig(epochs=2, batch_size=3, learning_rate=5e-4, max_seq_length=64, checkpoint_steps=2)
    out = train_model(examples.rows, examples.metadata, config, tmp_path / "m", validation=validation, jobs=JOBS)
    stats = json.loads((out / "training_config.json").read_text())
    assert stats["best_checkpoint"].startswith("checkpoint-") and stats["best_validation"] is not None
    assert stats["selection"]["scorings"] >= 2 and stats["selection"]["seconds"] > 0  # its cost is on record
    assert stats["checkpoint_uploads"] is None  # no S3 mirror asked for

    from include.matcher.foundations.evaluation import evaluate_model
    from include.matcher.foundations.models import load_model

    saved = evaluate_model(load_model(str(out), device="cpu"), validation, JOBS, with_title=False)["metrics"]["mrr@10"]
    assert saved == pytest.approx(stats["best_validation"], abs=1e-6)  # what was saved is the best checkpoint


def test_cached_multiple_negatives_trains_with_a_large_batch(tmp_path):
    examples = build_examples(CVS, JOBS, "multiple_negatives", 1.0, seed=1)
    config = TrainingConfig(epochs=1, batch_size=6, cached_mini_batch=2, max_seq_length=64)
    from include.matcher.foundations.losses import loss_spec
    from include.matcher.foundations.models import load_model

    assert (
        type(loss_spec("multiple_negatives").build(load_model("base", device="cpu"), config)).__name__
        == "CachedMultipleNegativesRankingLoss"
    )
    out = train_model(examples.rows, examples.metadata, config, tmp_path / "m")
    assert json.loads((out / "training_config.json").read_text())["config"]["cached_mini_batch"] == 2


def test_device_flags_use_mixed_precision_and_loader_workers_only_on_cuda(monkeypatch):
    import torch

    from include.matcher.stages.training import device_flags

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cpu = device_flags()
    assert (
        not cpu["bf16"] and not cpu["fp16"] and cpu["dataloader_num_workers"] == 0 and not cpu["dataloader_pin_memory"]
    )

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    for bf16_supported, expected in ((True, (True, False)), (False, (False, True))):
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda supported=bf16_supported: supported)
        cuda = device_flags()
        assert (cuda["bf16"], cuda["fp16"]) == expected
        assert (
            cuda["dataloader_pin_memory"]
            and cuda["dataloader_num_workers"] >= 1
            and cuda["dataloader_persistent_workers"]
        )


def test_each_s3_checkpoint_replaces_the_one_before(storage, locations, tmp_path):
    """Only the newest checkpoint stays on S3 (each is model + optimizer state), pointer included."""
    from types import SimpleNamespace

    from include.matcher.foundations.uris import join_uri
    from include.matcher.stages.training_callbacks import S3Checkpoints

    checkpoints = join_uri(locations.run_uri("prune-test"), "checkpoints")
    callback = S3Checkpoints(storage, checkpoints)
    for step in (4, 8, 12):
        folder = tmp_path / f"checkpoint-{step}"
        (folder / "1_Pooling").mkdir(parents=True)
        (folder / "model.safetensors").write_bytes(b"weights")
        (folder / "1_Pooling" / "config.json").write_text("{}")
        (folder / "README.md").write_text("sentence-transformers' card, quoting training CVs")
        callback.on_save(SimpleNamespace(output_dir=str(tmp_path)), SimpleNamespace(global_step=step), None)
    callback.on_train_end(None, None, None)
    keys = sorted(info.key.split("/checkpoints/", 1)[1] for info in storage.list(checkpoints))
    assert keys == [
        "checkpoint-12/1_Pooling/config.json",
        "checkpoint-12/model.safetensors",
        "latest.json",
    ]  # no README.md
    assert storage.get_json(join_uri(checkpoints, "latest.json"))["step"] == 12


@pytest.mark.s3
def test_checkpoints_upload_in_the_background_and_the_pointer_moves_only_when_one_is_whole(
    storage, locations, tmp_path
):
    """on_save returns while the upload runs; latest.json appears only after every file is on S3."""
    import threading
    import time
    from types import SimpleNamespace

    from include.matcher.foundations.storage import Storage
    from include.matcher.foundations.uris import join_uri
    from include.matcher.stages.training_callbacks import S3Checkpoints

    release = threading.Event()

    class HeldUploads(Storage):  # the real S3 client, with each upload held until the test lets it go
        def upload_dir(self, local_dir, prefix_uri):
            release.wait(30)
            return super().upload_dir(local_dir, prefix_uri)

    checkpoints = join_uri(locations.run_uri("background-test"), "checkpoints")
    callback = S3Checkpoints(HeldUploads(), checkpoints)
    folder = tmp_path / "checkpoint-5"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"weights" * 1000)
    started = time.monotonic()
    callback.on_save(SimpleNamespace(output_dir=str(tmp_path)), SimpleNamespace(global_step=5), None)
    assert time.monotonic() - started < 5  # training went on
    assert not storage.exists(join_uri(checkpoints, "latest.json"))  # nothing points at a half-uploaded checkpoint
    release.set()
    callback.on_train_end(None, None, None)
    assert storage.get_json(join_uri(checkpoints, "latest.json")) == {
        "step": 5,
        "uri": join_uri(checkpoints, "checkpoint-5"),
    }
    assert storage.get_bytes(join_uri(checkpoints, "checkpoint-5", "model.safetensors")) == b"weights" * 1000


@pytest.mark.model
def test_a_run_checkpoints_at_each_epoch_end_when_no_interval_comes_first(tmp_path, caplog):
    """checkpoint_minutes far off, no step interval: one scored checkpoint per epoch, the best kept."""
    import logging

    config = TrainingConfig(epochs=3, batch_size=4, max_seq_length=64, checkpoint_minutes=600, checkpoint_steps=0)
    examples = build_examples(CVS * 2, JOBS, "multiple_negatives", 1.0, seed=1)
    validation = [{"key": f"v{i}", **cv} for i, cv in enumerate(CVS)]
    with caplog.at_level(logging.INFO, logger="include.matcher.stages.training"):
        path = train_model(examples.rows, examples.metadata, config, tmp_path / "out", validation=validation, jobs=JOBS)
    stats = json.loads((path / "training_config.json").read_text())
    evaluated = [r.getMessage() for r in caplog.records if "validation at step" in r.getMessage()]
    assert len(evaluated) == 3, caplog.text[-3000:]  # one per epoch end, none from the trainer's own schedule
    steps = [int(line.split("validation at step ")[1].split(":")[0]) for line in evaluated]
    assert steps == [steps[0], 2 * steps[0], 3 * steps[0]]  # the three epoch ends
    assert stats["best_checkpoint"] in {f"checkpoint-{step}" for step in steps}


def test_checkpoints_are_chosen_by_the_run_s_primary_metric_not_the_default(tmp_path, base_model):
    """A run whose ``primary_metric`` param is accuracy@1 once still picked checkpoints by MRR@10 (the
    default's): the gate's metric of the run now reaches the selection."""
    from include.matcher.stages.training import selection_flags, validation_selector

    validation = [
        {"key": f"v{i}", "category": cv["category"], "text": f"title\n{cv['text']}"} for i, cv in enumerate(CVS)
    ]
    selector = validation_selector(validation, JOBS, "accuracy@1")
    assert selection_flags(selector)["metric_for_best_model"] == "eval_validation_accuracy@1"
    assert list(selector(base_model)) == ["validation_accuracy@1"]

    examples = build_examples(CVS * 2, JOBS, "multiple_negatives", 1.0, seed=1)
    config = TrainingConfig(epochs=1, batch_size=3, max_seq_length=64)
    out = train_model(
        examples.rows,
        examples.metadata,
        config,
        tmp_path / "m",
        validation=validation,
        jobs=JOBS,
        selection_metric="accuracy@1",
    )
    stats = json.loads((out / "training_config.json").read_text())
    assert stats["selection"]["metric"] == "accuracy@1" and stats["selection"]["scorings"] >= 1


def test_the_name_consistency_loss_adds_its_weight_times_how_far_apart_the_two_readings_are(base_model):
    """Deterministic: the loss on one batch, not what a run learns. The same CV under the same name adds
    nothing; under another name it adds weight x (1 - cosine) of the two readings."""
    import torch

    from include.matcher.foundations.losses import name_consistency_loss

    anchors = ["Ann Lee\nSous chef, grill and sauces.", "Bo Ray\nAirline pilot, 4,000 hours."]
    positives = ["Chefs direct the cooking of food.", "Pilots fly airplanes."]
    renamed = ["Cy Fox\nSous chef, grill and sauces.", "Dee Ng\nAirline pilot, 4,000 hours."]

    def loss_of(weight: float, other: list[str]) -> float:
        loss = name_consistency_loss(base_model, weight)
        features = [base_model.tokenize(texts) for texts in (anchors, positives, other)]
        with torch.no_grad():
            return float(loss(features, torch.zeros(2)))

    same = loss_of(5.0, anchors)
    assert same == pytest.approx(loss_of(0.0, anchors), abs=1e-5)
    vectors = base_model.encode(anchors + renamed, normalize_embeddings=True)
    apart = float(1 - (vectors[:2] * vectors[2:]).sum(axis=1).mean())
    assert apart > 0.01
    assert loss_of(5.0, renamed) - loss_of(0.0, renamed) == pytest.approx(5.0 * apart, rel=1e-3)


def test_counterfactual_rows_train_with_the_name_consistency_loss(tmp_path, monkeypatch):
    from include.matcher.stages import training

    built = []
    real = training.training_loss
    monkeypatch.setattr(training, "training_loss", lambda *a: built.append(real(*a)) or built[-1])
    config = TrainingConfig(epochs=1, batch_size=3, max_seq_length=64, name_consistency=1.0)
    from include.matcher.stages.pairs import training_examples

    examples = training_examples(CVS, JOBS, config)
    assert all("renamed" in row for row in examples.rows)
    out = train_model(examples.rows, examples.metadata, config, tmp_path / "m")
    assert type(built[0]).__name__ == "NameConsistencyLoss" and (out / "model.safetensors").exists()
    assert json.loads((out / "training_config.json").read_text())["config"]["name_consistency"] == 1.0


def test_the_trained_model_carries_its_reading_length_for_any_loader(tmp_path):
    """A night trained at 48 tokens is read at 48 by a plain SentenceTransformer too, not at the base's 256."""
    from sentence_transformers import SentenceTransformer

    examples = build_examples(CVS, JOBS, "multiple_negatives", 1.0, seed=1)
    out = train_model(
        examples.rows, examples.metadata, TrainingConfig(epochs=1, batch_size=3, max_seq_length=48), tmp_path / "m"
    )
    assert json.loads((out / "tokenizer_config.json").read_text())["model_max_length"] == 48  # where ST 6 keeps it
    assert SentenceTransformer(str(out), device="cpu").max_seq_length == 48
