import numpy as np
import pytest

from include.matcher.embeddings import plan_refresh, read_current, read_cv_vectors, read_parquet, refresh_embeddings
from include.matcher.models import resolve_model
from include.matcher.storage import join_uri

TEXTS = {
    "CHEF/a.txt": "Grill cook, steaks and burgers",
    "PILOT/b.txt": "First officer on A320",
    "CHEF/c.txt": "Pastry cook, breads and cakes",
}


def write_corpus(storage, locations, run: str, texts: dict[str, str]) -> str:
    rows = []
    for key, text in texts.items():
        text_uri = join_uri(locations.work, "texts", f"{abs(hash(text))}.json")
        storage.put_json(text_uri, {"text": text})
        rows.append(
            {"key": key, "category": key.split("/")[0], "text_uri": text_uri, "text_hash": str(abs(hash(text)))}
        )
    corpus_uri = join_uri(locations.work, "runs", run, "corpus.jsonl")
    storage.put_jsonl(corpus_uri, rows)
    return corpus_uri


def register(storage, locations, version: str) -> str:
    version_uri = join_uri(locations.registry, "models", version)
    storage.upload_dir(resolve_model("all-MiniLM-L6-v2"), version_uri)
    storage.put_json(join_uri(version_uri, "entry.json"), {"version": version})
    return version_uri


@pytest.fixture
def jobs(storage, locations):
    storage.put_json(locations.jobs_file, {"CHEF": ["Cook in a kitchen.", "Pastry chef."], "PILOT": "Airline pilot."})
    storage.put_bytes(
        join_uri(locations.job_offers, "offer-1.txt"),
        b"Job offer: sous chef wanted for a busy bistro kitchen, evenings." * 2,
    )
    storage.put_bytes(join_uri(locations.job_offers, "offer-broken.pdf"), b"not a pdf")


def test_refresh_writes_sharded_parquet_then_flips_the_pointer(storage, locations, jobs):
    corpus_uri = write_corpus(storage, locations, "r1", TEXTS)
    version_uri = register(storage, locations, "v1")

    target = refresh_embeddings(version_uri, corpus_uri, locations, storage, shard_size=2)

    current = read_current(storage, locations.embeddings)
    assert current["version"] == "v1" and current["uri"] == target
    manifest = storage.get_json(current["manifest"])
    assert [part["rows"] for part in manifest["parts"]["cvs"]] == [2, 1]
    assert all(0 < part["encode_seconds"] <= part["seconds"] for part in manifest["parts"]["cvs"])
    cvs = read_cv_vectors(storage, locations.embeddings)
    assert cvs.column_names == ["id", "source", "category", "text_hash", "vector", "model_version"]
    assert sorted(cvs.column("id").to_pylist()) == sorted(TEXTS)
    assert set(cvs.column("model_version").to_pylist()) == {"v1"}
    assert len(cvs.column("vector")[0]) == 384
    jobs_table = read_parquet(manifest["parts"]["jobs"][0]["uri"], storage)
    assert sorted(jobs_table.column("source").to_pylist()) == ["job_description"] * 3 + ["job_offer"]
    assert [r["reason"] for r in manifest["job_offer_rejects"]] == ["wrong_type"]
    assert manifest["counts"] == {"cvs": 3, "cvs_embedded": 3, "cvs_reused": 0, "job_texts": 4}


def test_same_model_reuses_unchanged_vectors_and_skips_an_unchanged_night(storage, locations, jobs):
    version_uri = register(storage, locations, "v1")
    refresh_embeddings(version_uri, write_corpus(storage, locations, "r1", TEXTS), locations, storage)
    before = {row["id"]: row["vector"] for row in read_cv_vectors(storage, locations.embeddings).to_pylist()}

    # Nothing changed: no shard is planned, so nothing is published and the pointer stays.
    pointer = read_current(storage, locations.embeddings)
    assert plan_refresh(version_uri, write_corpus(storage, locations, "r2", TEXTS), locations, storage) == []
    assert read_current(storage, locations.embeddings) == pointer

    # One CV edited, one added: only those two are embedded, the rest keep their vectors.
    grown = {**TEXTS, "PILOT/b.txt": "Captain on B737, 8,000 hours", "PILOT/d.txt": "Helicopter pilot, offshore"}
    target = refresh_embeddings(version_uri, write_corpus(storage, locations, "r3", grown), locations, storage)
    manifest = storage.get_json(join_uri(target, "_manifest.json"))
    assert manifest["counts"]["cvs_embedded"] == 2 and manifest["counts"]["cvs_reused"] == 2
    after = {row["id"]: row["vector"] for row in read_cv_vectors(storage, locations.embeddings).to_pylist()}
    assert after["CHEF/a.txt"] == before["CHEF/a.txt"]
    assert after["PILOT/b.txt"] != before["PILOT/b.txt"]


def test_reused_vectors_equal_fresh_ones_and_a_new_model_reuses_nothing(storage, locations, jobs):
    refresh_embeddings(
        register(storage, locations, "v1"), write_corpus(storage, locations, "r1", TEXTS), locations, storage
    )
    target = refresh_embeddings(
        register(storage, locations, "v2"), write_corpus(storage, locations, "r2", TEXTS), locations, storage
    )
    manifest = storage.get_json(join_uri(target, "_manifest.json"))
    assert manifest["version"] == "v2" and manifest["counts"]["cvs_reused"] == 0
    fresh = {row["id"]: np.asarray(row["vector"]) for row in read_cv_vectors(storage, locations.embeddings).to_pylist()}
    # v1 and v2 hold the same weights here, so v1's vectors (had they been reused) and v2's agree.
    first = {
        row["id"]: np.asarray(row["vector"])
        for part in storage.get_json(join_uri(locations.embeddings, "v1", "r1", "_manifest.json"))["parts"]["cvs"]
        for row in read_parquet(part["uri"], storage).to_pylist()
    }
    for key in TEXTS:
        np.testing.assert_allclose(fresh[key], first[key], atol=1e-5)


def test_a_different_cv_pooling_reuses_nothing(storage, locations, jobs, monkeypatch):
    version_uri = register(storage, locations, "v1")
    refresh_embeddings(version_uri, write_corpus(storage, locations, "r1", TEXTS), locations, storage)
    monkeypatch.setenv("MATCHER_CV_POOLING", "mean")
    target = refresh_embeddings(version_uri, write_corpus(storage, locations, "r2", TEXTS), locations, storage)
    manifest = storage.get_json(join_uri(target, "_manifest.json"))
    assert (
        manifest["cv_pooling"] == "mean"
        and manifest["counts"]["cvs_reused"] == 0
        and manifest["counts"]["cvs_embedded"] == 3
    )
