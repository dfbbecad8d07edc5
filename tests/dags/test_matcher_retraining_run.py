"""The whole DAG, run with ``dag.test()`` against a real SeaweedFS, then every artefact checked on S3.

Three nights: a first run that trains and promotes, a quiet night that stops after ingest, and a
night with two new CVs and a forced retrain that the gate refuses (promote skipped, run green, the
new CVs embedded with the production model, the others' vectors reused); then the rollback DAG.
"""

from __future__ import annotations

import io
import os

import pyarrow.parquet as pq
import pytest

from include.matcher.foundations.uris import join_uri
from tests.helpers import (
    ARRANGED_PROMOTION,
    BEATEN_VERSION,
    a_bucket_with_the_demo_night,
    aws_connection_json,
    read_cv_vectors,
    remove_buckets,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pipeline(s3_server, airflow_db, demo_night_folder, tmp_path_factory):
    """Demo data uploaded to a fresh bucket; the DAG loaded with MATCHER_* pointing there."""
    from include.matcher.foundations.settings import Locations

    # Night 1 must promote: arranged (production a model any candidate beats), not hoped of a tiny run.
    locations, storage = a_bucket_with_the_demo_night("dag", demo_night_folder, tmp_path_factory.mktemp("zeroed"))

    env = {var: getattr(locations, name) for name, var in Locations.ENV.items()}
    env.update(MATCHER_PARSE_SHARD_SIZE="20", MATCHER_EMBED_SHARD_SIZE="20")
    env["AIRFLOW_CONN_AWS_DEFAULT"] = aws_connection_json(s3_server)
    previous = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    from airflow.dag_processing.dagbag import DagBag

    dags = DagBag(dag_folder=str(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])).dags
    yield dags, locations, storage
    for key, value in previous.items():
        os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)
    remove_buckets(storage, locations)


def states(dag_run) -> dict[str, str]:
    return {
        ti.task_id: str(ti.state.value if hasattr(ti.state, "value") else ti.state)
        for ti in dag_run.get_task_instances()
    }


def asset_event_extras(name: str) -> list[dict]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        query = (
            select(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetModel.name == name)
            .order_by(AssetEvent.timestamp)
        )
        return [event.extra for event in session.scalars(query)]


def shard_names(dag_run, task_id: str) -> list[str]:
    return sorted(ti.rendered_map_index for ti in dag_run.get_task_instances() if ti.task_id == task_id)


def run_uri_of(dag_run, locations) -> str:
    return locations.run_uri(dag_run.run_id)


VOLATILE = {
    "created_at",
    "decided_at",
    "recorded_at",
    "written_at",
    "updated_at",
    "train_seconds",
    "examples_per_second",
    "seconds",
    "vector_memo",  # what validation read afresh and what it took from the night before: how, not what
    "waited_seconds",
    "encode_seconds",
    "cache_hits",
}


def _steady(value):
    """A JSON value without the fields that say when or how fast, not what."""
    if isinstance(value, dict):
        return {k: _steady(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_steady(v) for v in value]
    return value


def artefacts(storage, prefix: str) -> dict:
    """What a run wrote under ``prefix``, comparable across re-runs (timings and renders left out)."""
    import json

    bucket = prefix.split("/")[2]
    found = {}
    for info in storage.list(prefix):
        if "/timings/" in info.key or info.key.endswith((".md", ".html")):
            continue
        body = storage.get_bytes(f"s3://{bucket}/{info.key}")
        if info.key.endswith(".json"):
            body = _steady(json.loads(body))
        elif info.key.endswith(".jsonl"):
            body = [_steady(json.loads(line)) for line in body.splitlines()]
        found[info.key] = body
    return found


NIGHT_ONE = {"epochs": 2, "learning_rate": 5e-5, **ARRANGED_PROMOTION}


def test_three_nights_and_a_rollback(pipeline, capfd):
    dags, locations, storage = pipeline
    dag = dags["matcher_retraining"]

    # Night 1: everything new -> trained, validated, promoted (over the zeroed model), embeddings refreshed.
    capfd.readouterr()
    first = dag.test(run_conf=NIGHT_ONE)
    logs = "".join(capfd.readouterr())
    # A green night's task logs hold no error lines: no 404 from reading mapped outputs, no progress bars.
    assert "XCom not found" not in logs and "it/s]" not in logs and "Pushing xcom" in logs
    assert str(first.state) in ("success", "DagRunState.SUCCESS"), states(first)
    assert set(states(first).values()) == {"success"}, states(first)
    run = run_uri_of(first, locations)
    # MATCHER_PARSE_SHARD_SIZE=20 in the fixture: 83 files -> five parse_shard tasks, named in the UI.
    assert shard_names(first, "parse.parse_shard") == [
        f"shard {i}/5: files {20 * i - 19}-{min(20 * i, 83)}" for i in range(1, 6)
    ]
    assert shard_names(first, "refresh_embeddings.embed_shard") == [
        f"shard {i}/4: CVs {20 * i - 19}-{20 * i}" for i in range(1, 5)
    ]
    timings = storage.list(join_uri(run, "timings"))
    assert len(timings) == len(first.get_task_instances()), [t.key for t in timings]

    manifest = storage.get_json(join_uri(run, "manifest.json"))
    assert (
        manifest["counts"]["new"] == 83 and manifest["counts"]["skipped"] == 2
    )  # 80 CVs + 3 broken; .md and stray file
    parse_summary = storage.get_json(join_uri(run, "parse", "summary.json"))
    assert parse_summary["parsed"] == 80 and parse_summary["rejected"] == 3
    assert parse_summary["parsed"] + parse_summary["rejected"] == len(manifest["items"])
    corpus = storage.get_jsonl(join_uri(run, "corpus.jsonl"))
    assert len(corpus) == 80

    pairs = join_uri(run, "pairs")
    train = storage.get_jsonl(join_uri(pairs, "train.jsonl"))
    metadata = storage.get_jsonl(join_uri(pairs, "training_metadata.jsonl"))
    assert len(train) == len(metadata) > 0 and set(train[0]) == {"anchor", "positive"}
    candidate = join_uri(run, "candidate")
    for name in (
        "model.safetensors",
        "README.md",
        "training_metadata.jsonl",
        "training_config.json",
        "validation_report.json",
    ):
        assert storage.exists(join_uri(candidate, name)), name
    assert storage.get_jsonl(join_uri(candidate, "training_metadata.jsonl")) == metadata
    report = storage.get_json(join_uri(candidate, "validation_report.json"))
    assert report["decision"]["promote"] and report["production"]["version"] == BEATEN_VERSION
    assert {"accuracy@1", "mrr@10", "ndcg@10", "job_to_cv_recall@10", "job_to_cv_map@10"} <= set(
        report["candidate_metrics"]["metrics"]
    )
    assert (
        report["candidate_metrics"]["text"] == "title stripped"
        and "accuracy@1" in report["candidate_metrics"]["with_title"]["metrics"]
    )
    assert {"base_zero_shot", "tfidf_logreg"} <= set(report["baselines"]) and report["data_hash"]
    page = storage.get_bytes(report["html_report"]).decode()
    assert 'class="confusion-matrix"' in page and 'class="category-chart"' in page
    card = storage.get_bytes(join_uri(candidate, "README.md")).decode()
    assert "## Matcher evaluation" in card and report["data_hash"] in card

    production = storage.get_json(join_uri(locations.registry, "production.json"))
    assert production["version"] == report["version"]
    assert storage.exists(join_uri(production["uri"], "model.safetensors"))
    current = storage.get_json(join_uri(locations.embeddings, "current.json"))
    assert current["version"] == production["version"]
    cvs = read_cv_vectors(storage, locations.embeddings)
    assert cvs.num_rows == 80 and set(cvs.column("model_version").to_pylist()) == {production["version"]}
    jobs = pq.read_table(io.BytesIO(storage.get_bytes(join_uri(current["uri"], "jobs.parquet"))))
    assert jobs.num_rows == 10 + 1  # 5 categories x 2 descriptions + 1 job-offer document

    assert asset_event_extras("matcher_production_model")[-1]["version"] == production["version"]
    assert asset_event_extras("matcher_current_embeddings")[-1]["version"] == production["version"]

    # Clear the whole night and run every task again under the same run id: the same artefacts, the
    # same production, the embeddings left as they are (nothing changed: the refresh plans no shard).
    before = {
        **artefacts(storage, run),
        **artefacts(storage, locations.registry),
        **artefacts(storage, locations.embeddings),
    }
    again = dag.test(
        logical_date=first.logical_date,
        run_after=first.run_after,
        run_conf=NIGHT_ONE,
    )
    assert again.run_id == first.run_id and str(again.state) in ("success", "DagRunState.SUCCESS"), states(again)
    assert states(again)["promote"] == "success" and states(again)["refresh_embeddings.publish"] == "skipped", states(
        again
    )
    after = {
        **artefacts(storage, run),
        **artefacts(storage, locations.registry),
        **artefacts(storage, locations.embeddings),
    }
    assert sorted(after) == sorted(before)
    assert [key for key in before if before[key] != after[key]] == []

    # Night 2: nothing new -> stops after ingest, downstream skipped, run green, production untouched.
    quiet = dag.test()
    quiet_states = states(quiet)
    assert quiet_states["ingest.check_for_new_data"] == "success"
    assert quiet_states["ingest.find_new_files"] == "success"
    assert {quiet_states[t] for t in quiet_states if not t.startswith("ingest.")} == {"skipped"}, quiet_states
    assert storage.get_json(join_uri(run_uri_of(quiet, locations), "manifest.json"))["counts"]["new"] == 0

    # Night 3: two new CVs, and a retrain that cannot clear an impossible bar -> gate refuses, promote
    # skipped; the refresh embeds just the two new CVs with the production model and reuses the rest.
    for name in ("late-1.txt", "late-2.txt"):
        storage.put_bytes(
            join_uri(locations.raw_cvs, f"CHEF/{name}"),
            f"Sous chef ({name}): sauces, grill station, kitchen brigade of six. ".encode() * 4,
        )
    events_before_refusal = len(asset_event_extras("matcher_production_model"))
    refused = dag.test(
        run_conf={"force_retrain": True, "min_improvement": 1.0, "loss": "cosine", "negative_ratio": 0.5}
    )
    refused_states = states(refused)
    assert refused_states["validate.evaluate"] == "success" and refused_states["validate.gate"] == "success"
    assert refused_states["promote"] == "skipped" and refused_states["refresh_embeddings.publish"] == "success", (
        refused_states
    )
    refreshed = storage.get_json(join_uri(locations.embeddings, "current.json"))
    assert refreshed["version"] == production["version"] and refreshed["uri"] != current["uri"]
    assert storage.get_json(refreshed["manifest"])["counts"] == {
        "cvs": 82,
        "cvs_embedded": 2,
        "cvs_reused": 80,
        "job_texts": 11,
    }
    assert asset_event_extras("matcher_current_embeddings")[-1]["counts"]["cvs_embedded"] == 2
    refused_report = storage.get_json(join_uri(run_uri_of(refused, locations), "candidate", "validation_report.json"))
    assert (
        not refused_report["decision"]["promote"]
        and "does not clear the required +1.0000" in refused_report["decision"]["reason"]
    )
    assert refused_report["production"]["version"] == production["version"]  # compared with production now
    assert storage.get_json(join_uri(locations.registry, "production.json"))["version"] == production["version"]
    assert len(asset_event_extras("matcher_production_model")) == events_before_refusal  # no change, no event
    refused_metadata = storage.get_jsonl(join_uri(run_uri_of(refused, locations), "pairs", "training_metadata.jsonl"))
    labels = [row["label"] for row in refused_metadata]
    assert labels.count(0.0) == labels.count(1.0) // 2

    # The manual rollback DAG: repoint production (here: to the same version) and re-embed.
    rolled = dags["matcher_rollback"].test(run_conf={"version": production["version"]})
    assert set(states(rolled).values()) == {"success"}, states(rolled)
    assert storage.get_json(join_uri(locations.embeddings, "current.json"))["version"] == production["version"]
