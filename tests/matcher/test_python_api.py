"""The seed's Python API (CVParser, TrainingDatasetBuilder, MatcherTrainer, VectorMatcher) over the
pipeline's own stages: what its users called still works, on generated demo data and a real model."""

from __future__ import annotations

import json

import pytest

from include.devtools.demo_data import render_docx, render_pdf


@pytest.fixture(scope="module")
def parser():
    from include.matcher import CVParser

    with CVParser() as parser:
        yield parser


def test_cv_parser_reads_paths_and_bytes_of_every_kind_and_names_what_it_refuses(parser, tmp_path):
    import re

    from include.matcher import Rejected

    text = "Staff Accountant\n" + "Reconciled the general ledger and closed the books every month. " * 5
    (tmp_path / "cv.pdf").write_bytes(render_pdf(text))
    words = set(re.findall(r"\w+", text))
    for source in (tmp_path / "cv.pdf", str(tmp_path / "cv.pdf"), render_pdf(text), render_docx(text), text.encode()):
        parsed = parser.parse(source)
        assert words <= set(re.findall(r"\w+", parsed)), type(source)
    with pytest.raises(Rejected) as refused:
        parser.parse(b"%PDF-1.4 truncated", filename="broken.pdf")
    assert refused.value.reason == "corrupt"
    with pytest.raises(Rejected, match="no_text"):
        parser.parse(b"." * 300, filename="dots.txt")


def test_the_dataset_builder_gives_input_examples_and_metadata_for_each_loss(demo_folder):
    from sentence_transformers import InputExample

    from include.matcher import TrainingDatasetBuilder

    jobs = json.loads((demo_folder / "job_descriptions.json").read_text())
    cosine = TrainingDatasetBuilder(demo_folder / "cvs", demo_folder / "job_descriptions.json", 1.0, loss="cosine")
    examples, metadata = cosine.build()
    assert len(examples) == len(metadata) > 0 and all(isinstance(e, InputExample) for e in examples)
    assert {e.label for e in examples} == {0.0, 1.0} and all(len(e.texts) == 2 for e in examples)
    positives = [m for m in metadata if m["label"] == 1.0]
    assert len([m for m in metadata if m["label"] == 0.0]) == len(positives)  # negative_ratio 1.0
    assert all(m["job_category"] == m["category"] for m in positives)
    assert {m["category"] for m in metadata} <= set(jobs)
    assert cosine.rejects and cosine.held_out["test"]  # the demo's broken files, and the held-out CVs
    held = {cv["key"] for split in cosine.held_out.values() for cv in split}
    assert not held & {m["source_key"] for m in metadata}  # examples come from the training split only

    triplets, _ = TrainingDatasetBuilder(
        demo_folder / "cvs", demo_folder / "job_descriptions.json", loss="triplet"
    ).build()
    assert all(len(e.texts) == 3 for e in triplets)


def test_the_trainer_writes_a_model_with_its_metadata_that_vector_matcher_loads(demo_folder, tmp_path):
    from include.matcher import MatcherTrainer, TrainingDatasetBuilder, VectorMatcher

    examples, metadata = TrainingDatasetBuilder(
        demo_folder / "cvs", demo_folder / "job_descriptions.json", loss="multiple_negatives"
    ).build()
    trainer = MatcherTrainer(loss="multiple_negatives", batch_size=4, epochs=1, learning_rate=2e-5, max_seq_length=64)
    output = trainer.train(examples[:12], tmp_path / "model", metadata[:12])
    written = [json.loads(line) for line in (output / "training_metadata.jsonl").read_text().splitlines()]
    assert written == metadata[:12] and (output / "model.safetensors").exists()
    config = json.loads((output / "training_config.json").read_text())["config"]
    assert config["epochs"] == 1 and config["learning_rate"] == 2e-5 and config["batch_size"] == 4
    matcher = VectorMatcher(model_name=str(output), device="cpu")
    assert matcher.model.encode("Cook").shape == (384,)

    with pytest.raises(ValueError, match="takes examples of 3 texts"):
        MatcherTrainer(loss="triplet").train(examples[:2], tmp_path / "wrong")
    with pytest.raises(ValueError, match="learning_rate must be above 0"):
        MatcherTrainer(learning_rate=0.0)
