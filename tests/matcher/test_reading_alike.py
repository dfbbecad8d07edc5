"""Every path that turns a CV into a vector reads it alike: as much of it as the model's saved
reading length says, under the same pooling, redaction and precision (fp32 or bf16). A model saved to read 32 tokens is
served, validated and refreshed at 32; were any path to read 256 (the base model's length), its
vectors would differ and these tests fail."""

import numpy as np
import pytest

from include.matcher import VectorMatcher
from include.matcher.foundations.encoding import encode_cvs
from include.matcher.foundations.pointers import RegistryEntry
from include.matcher.foundations.settings import GateConfig
from include.matcher.foundations.text import strip_title
from include.matcher.foundations.uris import join_uri
from tests.helpers import read_cv_vectors

READS = 32
SKILLS = "grill station, sauces, pastry, menu costing, food safety, stock rotation, " * 12
CVS = [
    {"key": "CHEF/a.txt", "category": "CHEF", "text": f"Sous chef\nTen years in busy kitchens: {SKILLS}"},
    {"key": "PILOT/b.txt", "category": "PILOT", "text": "Airline captain\nA320 type rating, " + "night flights, " * 80},
]
JOBS = {"CHEF": ["Cook preparing meals in a restaurant kitchen."], "PILOT": ["Pilot flying commercial aircraft."]}


@pytest.fixture
def short_reader(base_model, tmp_path):
    """The base model saved to read its first 32 tokens only."""
    from sentence_transformers import SentenceTransformer

    folder = tmp_path / "reads-32"
    base_model.max_seq_length = READS
    try:
        base_model.save(str(folder))
    finally:
        base_model.max_seq_length = 256
    assert SentenceTransformer(str(folder), device="cpu").max_seq_length == READS
    return folder


def registered(storage, locations, folder, version: str) -> str:
    uri = join_uri(locations.registry, "models", version)
    storage.upload_dir(folder, uri)
    entry = RegistryEntry.written({"version": version, "uri": uri, "promoted_at": "2026-12-07T02:00:00"})
    storage.put_json(join_uri(uri, "entry.json"), entry.to_json())
    return uri


def test_a_model_saved_to_read_32_tokens_is_read_at_32_by_every_loader(
    short_reader, storage, locations, monkeypatch, tmp_path
):
    from sentence_transformers import SentenceTransformer

    from include.matcher.foundations.models import load_model
    from include.matcher.foundations.onnx_backend import load_encoder

    monkeypatch.setenv("MATCHER_MODEL_CACHE", str(tmp_path / "cache"))
    uri = registered(storage, locations, short_reader, "v-reads-32")
    assert SentenceTransformer(str(short_reader), device="cpu").max_seq_length == READS
    assert load_model(uri, storage).max_seq_length == READS
    matcher = VectorMatcher(model_name=uri, device="cpu")
    assert matcher.model.max_seq_length == READS
    onnx = load_encoder(uri, storage, "onnx")  # the refresh's other runtime
    assert onnx.max_seq_length == READS
    texts = [cv["text"] for cv in CVS]
    np.testing.assert_allclose(encode_cvs(onnx, texts), matcher.encode_cvs(texts), atol=1e-4)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_the_refresh_validation_and_vector_matcher_read_a_cv_alike(
    precision, short_reader, base_model, storage, locations, monkeypatch
):
    from include.matcher.stages.embeddings import read_parquet, refresh_embeddings
    from include.matcher.stages.validation import validate

    monkeypatch.setenv("MATCHER_ENCODE_PRECISION", precision)
    uri = registered(storage, locations, short_reader, f"v-alike-{precision}")
    matcher = VectorMatcher(model_name=uri, device="cpu")
    served = matcher.encode_cvs([cv["text"] for cv in CVS])
    at_256 = encode_cvs(base_model, [cv["text"] for cv in CVS])
    assert not np.allclose(served, at_256, atol=1e-3)  # the reading length shows in the vectors

    rows = []
    for cv in CVS:
        text_uri = join_uri(locations.work, "texts", cv["key"].replace("/", "-") + ".json")
        storage.put_json(text_uri, {"text": cv["text"]})
        rows.append({"key": cv["key"], "category": cv["category"], "text_uri": text_uri, "text_hash": cv["key"]})
    corpus_uri = join_uri(locations.work, "runs", f"alike-{precision}", "corpus.jsonl")
    storage.put_jsonl(corpus_uri, rows)
    storage.put_json(locations.jobs_file, JOBS)
    refresh_embeddings(uri, corpus_uri, locations, storage)
    refreshed = {
        row["id"]: np.asarray(row["vector"]) for row in read_cv_vectors(storage, locations.embeddings).to_pylist()
    }
    for cv, vector in zip(CVS, served, strict=True):
        np.testing.assert_allclose(refreshed[cv["key"]], vector, atol=1e-5)

    run = join_uri(locations.work, "runs", f"alike-{precision}")
    pairs = join_uri(run, "pairs")
    storage.put_jsonl(join_uri(pairs, "test.jsonl"), CVS)
    storage.put_jsonl(join_uri(pairs, "train_cvs.jsonl"), CVS)
    storage.put_json(join_uri(pairs, "jobs.json"), JOBS)
    storage.put_json(join_uri(pairs, "summary.json"), {"data_hash": "h"})
    report = storage.get_json(
        validate(uri, pairs, run, locations, GateConfig(audit_names_per_group=0), storage, base_model=uri)
    )
    held_out = read_parquet(report["held_out"]["vectors"], storage).to_pylist()
    validated = {row["key"]: np.asarray(row["candidate"]) for row in held_out}
    titles_stripped = matcher.encode_cvs([strip_title(cv["text"]) for cv in CVS])  # the gate scores CVs so
    for cv, vector in zip(CVS, titles_stripped, strict=True):
        np.testing.assert_allclose(validated[cv["key"]], vector, atol=1e-5)
