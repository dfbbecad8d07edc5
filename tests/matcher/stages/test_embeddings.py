import numpy as np
import pytest

from include.matcher.foundations import layout
from include.matcher.foundations.models import resolve_model
from include.matcher.foundations.pointers import RegistryEntry, read_current
from include.matcher.foundations.uris import join_uri
from include.matcher.stages.embeddings import plan_refresh, read_parquet, refresh_embeddings
from tests.helpers import read_cv_vectors

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


# What a ledger entry of a parsed CV holds besides its corpus row (the raw object's ETag and size).
PARSED = {"status": "parsed", "content_hash": "-", "chars": 1, "etag": '"e"', "size": 1}


def register(storage, locations, version: str) -> str:
    version_uri = join_uri(locations.registry, "models", version)
    storage.upload_dir(resolve_model("all-MiniLM-L6-v2"), version_uri)
    entry = RegistryEntry.written({"version": version, "uri": version_uri, "promoted_at": "2026-12-07T02:00:00"})
    storage.put_json(join_uri(version_uri, "entry.json"), entry.to_json())
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
    first_target = refresh_embeddings(
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
        for part in storage.get_json(join_uri(first_target, "_manifest.json"))["parts"]["cvs"]
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


def test_the_refresh_reads_cvs_without_names_and_turning_redaction_off_reuses_nothing(
    storage, locations, jobs, monkeypatch
):
    """The same CV under two names never seen, in a header and a contact line: one stored vector."""
    named = {
        "CHEF/a.txt": "Oluwaseun Adeyemi\n" + TEXTS["CHEF/a.txt"],
        "CHEF/b.txt": "Agnieszka Wójcik\n" + TEXTS["CHEF/a.txt"],
        "CHEF/c.txt": "aroha.ngata@example.com | +64 21 555 0188\n" + TEXTS["CHEF/a.txt"],
        "CHEF/d.txt": TEXTS["CHEF/a.txt"],
    }
    version_uri = register(storage, locations, "v1")
    refresh_embeddings(version_uri, write_corpus(storage, locations, "r1", named), locations, storage)
    vectors = {row["id"]: row["vector"] for row in read_cv_vectors(storage, locations.embeddings).to_pylist()}
    assert all(np.allclose(vectors[key], vectors["CHEF/d.txt"], atol=1e-6) for key in named)
    monkeypatch.setenv("MATCHER_REDACT_IDENTIFIERS", "false")
    target = refresh_embeddings(version_uri, write_corpus(storage, locations, "r2", named), locations, storage)
    manifest = storage.get_json(join_uri(target, "_manifest.json"))
    assert manifest["counts"]["cvs_reused"] == 0 and manifest["encoder"].endswith("/whole")
    whole = {row["id"]: row["vector"] for row in read_cv_vectors(storage, locations.embeddings).to_pylist()}
    assert not np.allclose(whole["CHEF/a.txt"], whole["CHEF/d.txt"], atol=1e-3)


def snapshot_objects(storage, snapshot_uri: str) -> dict[str, str]:
    return {info.uri: info.etag for info in storage.list(snapshot_uri)}


def test_new_job_offers_are_published_in_a_new_folder_never_into_the_live_one(storage, locations, jobs):
    """Same model, same corpus, a new job offer: the live snapshot's objects stay byte for byte (a
    reader that loaded it keeps a consistent one), the new one is written beside it."""
    version_uri = register(storage, locations, "v1")
    corpus = write_corpus(storage, locations, "r1", TEXTS)
    live = refresh_embeddings(version_uri, corpus, locations, storage)
    before = snapshot_objects(storage, live)

    storage.put_bytes(join_uri(locations.job_offers, "offer-2.txt"), b"Job offer: airline captain for A320 jets. " * 3)
    published = refresh_embeddings(version_uri, corpus, locations, storage)

    assert published != live and read_current(storage, locations.embeddings)["uri"] == published
    assert snapshot_objects(storage, live) == before
    jobs_now = read_parquet(storage.get_json(join_uri(published, "_manifest.json"))["parts"]["jobs"][0]["uri"], storage)
    assert "offer-2.txt" in " ".join(jobs_now.column("id").to_pylist())


def test_an_older_corpus_is_never_published_over_the_current_one(storage, locations, jobs):
    """Clearing an old night's refresh re-runs it on that night's corpus: CVs deleted since must not
    come back into search."""

    version_uri = register(storage, locations, "v1")
    old = write_corpus(storage, locations, "r1", TEXTS)
    kept = {key: text for key, text in TEXTS.items() if key != "CHEF/c.txt"}
    new = write_corpus(storage, locations, "r2", kept)
    # The ledger (what parse commits) says what the corpus is now: CHEF/c.txt was deleted since r1.
    rows = storage.get_jsonl(new)
    objects = {row["key"]: {**row, **PARSED} for row in rows}
    storage.put_json(layout.ledger(locations.work), {"objects": objects, "jobs_file_etag": None})
    current = refresh_embeddings(version_uri, new, locations, storage)

    assert plan_refresh(version_uri, old, locations, storage) == []
    assert refresh_embeddings(version_uri, old, locations, storage) == current  # the CLI's refresh: nothing published
    assert read_current(storage, locations.embeddings)["uri"] == current
    assert sorted(read_cv_vectors(storage, locations.embeddings).column("id").to_pylist()) == sorted(kept)


@pytest.mark.s3
def test_a_publish_interrupted_by_s3_going_away_leaves_the_live_snapshot_whole(tmp_path, monkeypatch):
    """S3 stops in the middle of a publish: the pointer and every object of the live snapshot are as
    they were, and a reader sees the old snapshot (never new parts under an old manifest)."""
    import uuid

    from include.devtools import embedded_s3
    from include.matcher.foundations.settings import Locations
    from include.matcher.foundations.storage import Storage
    from include.matcher.stages.embeddings import embed_part, publish_embeddings
    from tests.matcher.test_s3_faults import client_for

    data_dir = tmp_path / "s3"
    server = embedded_s3.start(data_dir, s3_port=embedded_s3.free_port(), base_port=None)
    try:
        monkeypatch.setenv("MATCHER_S3_RETRY_SECONDS", "2")
        storage = Storage(client_for(server))
        bucket = f"publish-{uuid.uuid4().hex[:8]}"
        storage.ensure_bucket(bucket)
        locations = Locations.in_bucket(bucket)
        storage.put_json(locations.jobs_file, {"CHEF": "Cook in a kitchen.", "PILOT": "Airline pilot."})
        version_uri = register(storage, locations, "v1")
        corpus = write_corpus(storage, locations, "r1", TEXTS)
        live = refresh_embeddings(version_uri, corpus, locations, storage)
        pointer, before = read_current(storage, locations.embeddings), snapshot_objects(storage, live)
        vectors_before = read_cv_vectors(storage, locations.embeddings).to_pylist()

        grown = write_corpus(storage, locations, "r2", {**TEXTS, "PILOT/d.txt": "Helicopter pilot, offshore"})
        shards = plan_refresh(version_uri, grown, locations, storage)
        parts = [embed_part(uri, storage) for uri in shards]

        def stop_at_the_manifest(request, **_):
            if request.method == "PUT" and "_manifest.json" in request.url:
                embedded_s3.stop(data_dir)

        storage.client.meta.events.register("before-send.s3", stop_at_the_manifest)
        with pytest.raises(Exception):  # noqa: B017 - whichever connection error botocore raises last
            publish_embeddings(version_uri, grown, parts, locations, storage)
        storage.client.meta.events.unregister("before-send.s3", stop_at_the_manifest)

        port = int(server.endpoint.rsplit(":", 1)[1])
        embedded_s3.start(data_dir, s3_port=port, internal_ports=list(server.internal_ports))
        after = Storage(client_for(server))
        assert read_current(after, locations.embeddings) == pointer
        assert snapshot_objects(after, live) == before
        assert read_cv_vectors(after, locations.embeddings).to_pylist() == vectors_before
    finally:
        embedded_s3.stop(data_dir)


def test_a_ledger_that_moves_while_a_refresh_embeds_stops_the_publish_before_the_flip(storage, locations, jobs):
    """An erasure or another night commits the ledger between plan and publish: the pointer stays."""
    from include.matcher.stages.embeddings import StaleCorpus, embed_part, publish_embeddings

    version_uri = register(storage, locations, "v1")
    corpus = write_corpus(storage, locations, "r1", TEXTS)
    rows = storage.get_jsonl(corpus)
    ledger = {row["key"]: {**row, **PARSED} for row in rows}
    storage.put_json(layout.ledger(locations.work), {"objects": ledger, "jobs_file_etag": None})
    parts = [embed_part(uri, storage) for uri in plan_refresh(version_uri, corpus, locations, storage)]

    del ledger["CHEF/c.txt"]  # removed while the shards were embedding
    storage.put_json(layout.ledger(locations.work), {"objects": ledger, "jobs_file_etag": None})
    with pytest.raises(StaleCorpus, match="no longer the corpus as it is now"):
        publish_embeddings(version_uri, corpus, parts, locations, storage)
    assert read_current(storage, locations.embeddings) is None
