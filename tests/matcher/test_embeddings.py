import io

import pyarrow.parquet as pq

from include.matcher.embeddings import read_current, refresh_embeddings
from include.matcher.models import resolve_model
from include.matcher.storage import join_uri


def test_refresh_writes_parquet_then_flips_the_pointer(storage, locations):
    storage.put_json(locations.jobs_file, {"CHEF": ["Cook in a kitchen.", "Pastry chef."], "PILOT": "Airline pilot."})
    storage.put_bytes(join_uri(locations.job_offers, "offer-1.txt"), b"Job offer: sous chef wanted for a busy bistro kitchen, evenings." * 2)
    storage.put_bytes(join_uri(locations.job_offers, "offer-broken.pdf"), b"not a pdf")
    texts = {"CHEF/a.txt": "Grill cook, steaks and burgers", "PILOT/b.txt": "First officer on A320"}
    corpus_rows = []
    for i, (key, text) in enumerate(texts.items()):
        text_uri = join_uri(locations.work, "texts", f"{i}.json")
        storage.put_json(text_uri, {"text": text})
        corpus_rows.append({"key": key, "category": key.split("/")[0], "text_uri": text_uri})
    corpus_uri = join_uri(locations.work, "runs", "r1", "corpus.jsonl")
    storage.put_jsonl(corpus_uri, corpus_rows)
    version_uri = join_uri(locations.registry, "models", "v1")
    storage.upload_dir(resolve_model("all-MiniLM-L6-v2"), version_uri)
    storage.put_json(join_uri(version_uri, "entry.json"), {"version": "v1"})

    target = refresh_embeddings(version_uri, corpus_uri, locations, storage)

    current = read_current(storage, locations.embeddings)
    assert current["version"] == "v1" and current["uri"] == target
    cvs = pq.read_table(io.BytesIO(storage.get_bytes(join_uri(target, "cvs.parquet"))))
    jobs = pq.read_table(io.BytesIO(storage.get_bytes(join_uri(target, "jobs.parquet"))))
    assert cvs.column_names == ["id", "source", "category", "vector", "model_version"]
    assert sorted(cvs.column("id").to_pylist()) == sorted(texts)
    assert set(cvs.column("model_version").to_pylist()) == {"v1"}
    assert len(cvs.column("vector")[0]) == 384
    assert sorted(jobs.column("source").to_pylist()) == ["job_description"] * 3 + ["job_offer"]
    manifest = storage.get_json(current["manifest"])
    assert [r["reason"] for r in manifest["job_offer_rejects"]] == ["wrong_type"]
