import json

import pytest

from include.matcher.pairs import build_examples
from include.matcher.settings import TrainingConfig
from include.matcher.training import train_model

JOBS = {"CHEF": ["Cook preparing meals in a restaurant kitchen."], "PILOT": ["Pilot flying commercial aircraft."], "NURSE": ["Nurse caring for patients in a hospital."]}
CVS = [
    {"key": f"{c}/{i}", "category": c, "text": t}
    for i, (c, t) in enumerate(
        [("CHEF", "Grill cook at a steakhouse"), ("CHEF", "Pastry chef, breads and cakes"), ("PILOT", "First officer on A320 jets"),
         ("PILOT", "Helicopter pilot, 2,000 hours"), ("NURSE", "ICU nurse, ventilated patients"), ("NURSE", "Midwife on a maternity ward")]
    )
]  # fmt: skip


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


def test_training_moves_the_weights(tmp_path, base_model):
    examples = build_examples(CVS, JOBS, "multiple_negatives", 1.0, seed=1)
    out = train_model(examples.rows, examples.metadata, TrainingConfig(epochs=2, batch_size=3, learning_rate=1e-4, max_seq_length=64), tmp_path / "m")
    from include.matcher.models import load_model

    tuned = load_model(str(out), device="cpu")
    before = base_model.encode(["Grill cook at a steakhouse"])
    after = tuned.encode(["Grill cook at a steakhouse"])
    assert abs(before - after).max() > 1e-4


def test_empty_training_set_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="no training examples"):
        train_model([], [], TrainingConfig(), tmp_path)


def test_config_validation():
    with pytest.raises(ValueError):
        TrainingConfig(loss="hinge")
    with pytest.raises(ValueError):
        TrainingConfig(negative_ratio=-1)
