"""Top-k matching over the stored snapshot: the base model promoted as production, a real refresh
over a small corpus, then the Python API, the CLI and the reader's pointer consistency."""

from __future__ import annotations

import json

import pytest

from include.matcher.foundations import layout
from include.matcher.foundations.text import text_fingerprint

CVS = {
    "CHEF/grill.txt": ("CHEF", "Grill cook: steaks, sauces and a busy brasserie kitchen line; menu costing."),
    "CHEF/pastry.txt": ("CHEF", "Pastry chef baking bread, croissants and plated desserts for a hotel restaurant."),
    "PILOT/captain.txt": (
        "PILOT",
        "Airline captain, 6,000 flight hours on Airbus A320 jets; crew resource management.",
    ),
    "PILOT/heli.txt": ("PILOT", "Helicopter pilot flying offshore transfers and medical evacuation missions."),
    "NURSE/icu.txt": ("NURSE", "Intensive care nurse caring for ventilated patients; medication and family support."),
}
JOBS = {"CHEF": "Cook preparing meals in a restaurant kitchen.", "PILOT": "Pilot flying aircraft.", "NURSE": "Nurse."}


def put_base_model_in_production(storage, locations) -> str:
    """Production = the packaged base model, as registry version v-base; its URI."""
    from include.matcher.foundations.models import base_model_path

    version = layout.version(locations.registry, "v-base")
    storage.upload_dir(base_model_path(), version.uri)
    entry = {"version": "v-base", "uri": version.uri, "metrics": {}, "promoted_at": "2026-11-27T02:00:00"}
    storage.put_json(version.entry, entry)
    storage.put_json(layout.production_pointer(locations.registry), entry)
    return version.uri


def promote_base_model_and_refresh(storage, locations, run: str = "night-1") -> str:
    """Production = the packaged base model (as registry version v-base); the corpus embedded with it."""
    from include.matcher.stages.embeddings import refresh_embeddings

    version_uri = put_base_model_in_production(storage, locations)
    storage.put_json(locations.jobs_file, JOBS)
    rows = []
    for key, (category, text) in CVS.items():
        uri = layout.text_cache(locations.work, text_fingerprint(text))
        storage.put_json(uri, {"text": text})
        rows.append({"key": key, "category": category, "text_hash": text_fingerprint(text), "text_uri": uri})
    corpus = layout.Run(locations.run_uri(run)).corpus
    storage.put_jsonl(corpus, rows)
    return refresh_embeddings(version_uri, corpus, locations, storage)


@pytest.fixture
def published(storage, locations, monkeypatch):
    for name, var in locations.ENV.items():
        monkeypatch.setenv(var, getattr(locations, name))
    promote_base_model_and_refresh(storage, locations)
    return locations


def test_top_candidates_and_jobs_answer_from_the_snapshot(storage, published):
    from include.matcher.serving.matcher import VectorMatcher

    matcher = VectorMatcher(model_name="production", storage=storage, device="cpu")
    hits = matcher.top_candidates(CVS["PILOT/heli.txt"][1], k=3)
    assert hits[0].id.endswith("PILOT/heli.txt") and hits[0].score == pytest.approx(1.0, abs=1e-4)
    assert (hits[0].category, hits[0].source, hits[0].model_version) == ("PILOT", "cv", "v-base") and len(hits) == 3
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    only_chefs = matcher.top_candidates("Cook preparing meals in a restaurant kitchen.", k=10, category="CHEF")
    assert {h.category for h in only_chefs} == {"CHEF"} and len(only_chefs) == 2
    lower = matcher.top_candidates("Cook preparing meals in a restaurant kitchen.", k=10, category="chef")
    assert [h.id for h in lower] == [h.id for h in only_chefs]  # categories match case-blind
    jobs = matcher.top_jobs(CVS["NURSE/icu.txt"][1], k=2)
    assert jobs[0].id == "NURSE#0" and jobs[0].source == "job_description"


@pytest.mark.parametrize("k", [-5, 0, 1001, 2.5, True])
def test_a_search_for_a_number_of_results_that_is_not_one_is_refused_and_not_logged(storage, published, k):
    from include.matcher.serving.matcher import VectorMatcher
    from include.matcher.serving.usage_log import read_search_log, search_log

    matcher = VectorMatcher(model_name="production", storage=storage, device="cpu")
    with pytest.raises(ValueError, match="number of results must be a whole number from 1 to 1000"):
        matcher.top_candidates("Pilot.", k=k)
    search_log(storage, published).flush()
    assert read_search_log(storage, published) == []


def test_a_model_other_than_the_snapshots_is_refused(storage, published):
    from include.matcher.serving.matcher import VectorMatcher
    from include.matcher.serving.search import SnapshotMismatch

    with pytest.raises(SnapshotMismatch, match="made by model v-base"):
        VectorMatcher(model_name="all-MiniLM-L6-v2", storage=storage, device="cpu").top_candidates("Pilot.")


@pytest.mark.s3
def test_the_cli_prints_the_same_top_k_as_python(storage, published, tmp_path):
    from include.matcher.serving.matcher import VectorMatcher
    from tests.matcher.test_cli import run_cli

    query = "Airline pilot for short-haul jets."
    expected = [
        h.id for h in VectorMatcher(model_name="production", storage=storage, device="cpu").top_candidates(query, k=3)
    ]
    lines = run_cli("match", "--text", query, "--top", "3", "--json")
    assert [json.loads(line)["id"] for line in lines] == expected
    (tmp_path / "job.txt").write_text(query + " Crew resource management, instrument ratings, safety first. " * 2)
    table = run_cli("match", "--job", str(tmp_path / "job.txt"), "--top", "2")
    assert table[0].startswith("rank") and "model v-base" in table[0] and "PILOT" in table[1]


def test_a_reader_sees_one_whole_snapshot_and_follows_the_pointer(storage, published):
    from include.matcher.serving.search import SnapshotReader

    reader = SnapshotReader(storage, published.embeddings, check_seconds=0)
    before = reader.index()
    assert len(before.cvs.ids) == 5
    # A second night: its snapshot is written beside the first; the reader moves only when the pointer does.
    from include.matcher.stages.embeddings import embed_part, plan_refresh, publish_embeddings

    text = "Sous chef running the grill station; sauces, fish and a brigade of six."
    text_uri = layout.text_cache(published.work, text_fingerprint(text))
    storage.put_json(text_uri, {"text": text})
    first_corpus = storage.get_jsonl(layout.Run(published.run_uri("night-1")).corpus)
    row = {"key": "CHEF/sous.txt", "category": "CHEF", "text_hash": text_fingerprint(text), "text_uri": text_uri}
    second = layout.Run(published.run_uri("night-2")).corpus
    storage.put_jsonl(second, [*first_corpus, row])
    version_uri = layout.version(published.registry, "v-base").uri
    parts = [embed_part(shard, storage) for shard in plan_refresh(version_uri, second, published, storage)]
    assert reader.index() is before and len(reader.index().cvs.ids) == 5  # parts written, pointer not flipped
    publish_embeddings(version_uri, second, parts, published, storage)
    assert (
        len(reader.index().cvs.ids) == 6 and f"/{layout.Run(published.run_uri('night-2')).name}-" in reader.index().uri
    )


def test_a_snapshot_beyond_the_exact_limit_is_searched_through_the_index_built_at_publish(
    storage, locations, monkeypatch
):
    """The index is written before the pointer flips, readers load it instead of the float vectors,
    and it ranks as the exact search does."""
    from include.matcher.foundations import vector_index
    from include.matcher.foundations.vector_index import EXACT_SEARCH_MAX_ROWS
    from include.matcher.serving.search import SnapshotReader

    exact = promote_base_model_and_refresh(storage, locations, run="night-1")
    exact_index = SnapshotReader(storage, locations.embeddings).index()
    assert storage.get_json(layout.Snapshot(exact).manifest)["cv_index"] is None
    assert exact_index.cvs.ann is None

    monkeypatch.setattr(vector_index, "EXACT_SEARCH_MAX_ROWS", 2)
    storage.delete_prefix(locations.embeddings)
    indexed = promote_base_model_and_refresh(storage, locations, run="night-1")
    monkeypatch.setattr(vector_index, "EXACT_SEARCH_MAX_ROWS", EXACT_SEARCH_MAX_ROWS)
    manifest = storage.get_json(layout.Snapshot(indexed).manifest)
    assert manifest["cv_index"]["rows"] == 5 and manifest["cv_index"]["kind"] == "IVF1,SQ8"
    assert storage.exists(manifest["cv_index"]["uri"]) and storage.exists(manifest["cv_index"]["rows_uri"])
    index = SnapshotReader(storage, locations.embeddings).index()
    assert index.cvs.matrix is None and index.cvs.ann is not None  # float vectors never loaded

    for query in (exact_index.jobs.matrix[0], exact_index.jobs.matrix[1]):
        through_index = index.top(index.cvs, query, 5)
        exactly = exact_index.top(exact_index.cvs, query, 5)
        assert [hit.id for hit in through_index[:2]] == [hit.id for hit in exactly[:2]]
        assert [hit.score for hit in through_index] == pytest.approx([hit.score for hit in exactly], abs=0.02)
    chefs = index.top(index.cvs, exact_index.jobs.matrix[0], 5, category="CHEF")
    assert {hit.id for hit in chefs} == {"CHEF/grill.txt", "CHEF/pastry.txt"}
    assert index.top(index.cvs, exact_index.jobs.matrix[0], 5, category="ASTRONAUT") == []


def test_exact_top_ranks_best_first_keeps_to_allowed_rows_and_answers_an_empty_table():
    import numpy as np

    from include.matcher.serving.search import exact_top

    matrix = np.eye(4, dtype=np.float32)
    query = np.array([0.1, 0.9, 0.4, 0.0], dtype=np.float32)
    assert [row for row, _ in exact_top(matrix, query, 3)] == [1, 2, 0]
    assert [row for row, _ in exact_top(matrix, query, 3, rows=np.array([0, 3]))] == [0, 3]
    assert exact_top(np.zeros((0, 0), dtype=np.float32), query, 3) == []
