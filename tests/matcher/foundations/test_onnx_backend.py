"""The ONNX route for the embedding refresh: same vectors as torch, exported once per version."""

import numpy as np
import pytest

from include.matcher.foundations.models import resolve_model
from include.matcher.foundations.onnx_backend import FILES, load_encoder
from include.matcher.foundations.uris import join_uri

TEXTS = [
    "Sous chef: sauces, grill station, a brigade of six.",
    "Captain on A320 jets, 8,000 hours.",
    "x",
    "Payroll, month-end close and audits " * 40,
]


@pytest.fixture(scope="module")
def version_uri(s3_server):
    import uuid

    from include.matcher.foundations.settings import Locations
    from include.matcher.foundations.storage import Storage
    from tests.helpers import remove_buckets

    storage = Storage()
    bucket = f"onnx-{uuid.uuid4().hex[:8]}"
    storage.ensure_bucket(bucket)
    uri = f"s3://{bucket}/registry/models/v1"
    storage.upload_dir(resolve_model("all-MiniLM-L6-v2"), uri)
    yield uri
    remove_buckets(storage, Locations.in_bucket(bucket))


def test_onnx_vectors_match_torch_and_int8_stays_close(version_uri, storage, base_model, monkeypatch, tmp_path):
    monkeypatch.setenv("MATCHER_MODEL_CACHE", str(tmp_path / "cache"))
    reference = base_model.encode(TEXTS, normalize_embeddings=True, convert_to_numpy=True)
    fp32 = load_encoder(version_uri, storage, "onnx").encode(TEXTS)
    int8 = load_encoder(version_uri, storage, "onnx-int8").encode(TEXTS)
    assert np.abs(fp32 - reference).max() < 1e-4
    assert (np.sum(int8 * reference, axis=1) > 0.97).all()  # cosine to the torch vector
    for backend in ("onnx", "onnx-int8"):  # stored with the version for every other worker
        assert storage.exists(join_uri(version_uri, "onnx", FILES[backend]))


def test_a_second_worker_downloads_the_stored_export(version_uri, storage, monkeypatch, tmp_path):
    import include.matcher.foundations.onnx_backend as onnx_backend

    load_encoder(version_uri, storage, "onnx-int8")  # make sure it is stored
    monkeypatch.setenv("MATCHER_MODEL_CACHE", str(tmp_path / "fresh-worker"))
    monkeypatch.setattr(onnx_backend, "export_onnx", lambda *a, **k: pytest.fail("exported again"))
    vectors = load_encoder(version_uri, storage, "onnx-int8").encode(TEXTS[:2])
    assert vectors.shape == (2, 384)


def test_a_model_sentence_transformers_6_saved_exports_too(storage, base_model, tmp_path):
    """A fine-tuned model is saved with sentence-transformers 6's pooling config (`pooling_mode: mean`),
    which the export once refused: MATCHER_EMBED_BACKEND=onnx failed on every promoted model."""
    import json

    saved = tmp_path / "saved"
    base_model.save(str(saved))
    assert json.loads((saved / "1_Pooling" / "config.json").read_text())["pooling_mode"] == "mean"
    vectors = load_encoder(str(saved), storage, "onnx").encode(TEXTS)
    reference = base_model.encode(TEXTS, normalize_embeddings=True, convert_to_numpy=True)
    assert np.abs(vectors - reference).max() < 1e-4

    (saved / "1_Pooling" / "config.json").write_text(json.dumps({"embedding_dimension": 384, "pooling_mode": "cls"}))
    with pytest.raises(ValueError, match="mean Pooling"):
        load_encoder(str(saved), storage, "onnx-int8")
