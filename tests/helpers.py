"""Helpers the tests share. No side effects on import (unlike conftest.py, which sets Airflow's environment)."""

from __future__ import annotations

import json
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def aws_connection_json(server) -> str:
    """Airflow's ``aws_default`` connection for the test S3 server, as AIRFLOW_CONN_AWS_DEFAULT takes it."""
    extra = {"endpoint_url": server.endpoint, "region_name": "us-east-1"}
    return json.dumps({"conn_type": "aws", "login": server.access_key, "password": server.secret_key, "extra": extra})


def damaged_model(base_model, folder: Path, how: str):
    """The base model with its weights set to NaN (``nan``), to zero (``zero``) or nudged by noise
    (``noisy``), saved into ``folder``; the loaded copy."""
    import copy

    import torch

    from include.matcher.foundations.models import load_model

    model = copy.deepcopy(base_model)
    with torch.no_grad():
        torch.manual_seed(0)
        for parameter in model.parameters():
            if how == "noisy":
                parameter.add_(torch.randn_like(parameter) * 0.3 * parameter.std().nan_to_num())
            else:
                parameter.fill_(float("nan") if how == "nan" else 0.0)
    model.save(str(folder), create_model_card=False)
    return load_model(str(folder), device="cpu")


BEATEN_VERSION = "v-zeroed"


def put_a_model_every_candidate_beats_in_production(storage, locations, folder: Path) -> str:
    """Production = the base model with every weight zeroed, as registry version ``v-zeroed``.

    Each CV embeds to the zero vector, so every category ties and (ties count against the truth)
    ranks last: any working candidate scores at least as well on every held-out CV and every job ->
    CV query, so each interval of the change starts at 0 or above. A test that needs a night to
    promote arranges it with this and ``min_improvement: 0``, ``min_primary: 0``, instead of hoping
    a tiny training run learns enough; and, since a model that ties everything ignores names
    entirely, ``max_name_sensitivity_increase: 1`` and ``min_impact_ratio: 0`` (the audit still runs).
    """
    from include.matcher.foundations import layout
    from include.matcher.foundations.models import load_model
    from include.matcher.foundations.pointers import RegistryEntry

    damaged_model(load_model("all-MiniLM-L6-v2", device="cpu"), folder, "zero")
    version = layout.version(locations.registry, BEATEN_VERSION)
    storage.upload_dir(folder, version.uri)
    entry = RegistryEntry.written(
        {
            "version": BEATEN_VERSION,
            "uri": version.uri,
            "metrics": {},
            "promoted_at": "2026-01-01T00:00:00",
            "previous": None,
        }
    ).to_json()
    storage.put_json(version.entry, entry)
    storage.put_json(layout.production_pointer(locations.registry), entry)
    return version.uri


# A night that must promote, arranged with the production above: no margin over it asked, no floor,
# and the bias rules lifted (a model that ties every score ignores names entirely, so any real
# candidate "increases" name sensitivity over it); the audit still runs.
ARRANGED_PROMOTION = {
    "min_improvement": 0.0,
    "min_primary": 0.0,
    "max_name_sensitivity_increase": 1.0,
    "min_impact_ratio": 0.0,
}


def production_matcher(storage, locations):
    """``VectorMatcher("production")`` over these locations (registry, embeddings, search log)."""
    from include.matcher.serving.matcher import VectorMatcher

    return VectorMatcher.at(locations, storage, device="cpu")


def remove_buckets(storage, locations) -> None:
    """Delete a test's buckets and all they hold. SeaweedFS keeps a bucket's volumes on disk until the
    bucket itself is deleted: a session that leaves its buckets grows by every model and checkpoint."""
    for bucket in locations.buckets() & storage.buckets():
        storage.delete_prefix(f"s3://{bucket}/")
        storage.delete_bucket(bucket)


def a_bucket_with_the_demo_night(prefix: str, demo_night_folder: Path, zeroed_folder: Path):
    """(locations, storage) of a fresh bucket holding the demo night (CVs, job offers, jobs file), with
    production a model every candidate beats, so the first night's promotion is arranged, not hoped for."""
    import uuid

    from include.matcher.foundations.settings import Locations
    from include.matcher.foundations.storage import Storage

    bucket = f"{prefix}-{uuid.uuid4().hex[:10]}"
    locations = Locations.in_bucket(bucket)
    storage = Storage()
    storage.ensure_bucket(bucket)
    storage.upload_dir(demo_night_folder / "cvs", locations.raw_cvs)
    storage.upload_dir(demo_night_folder / "job-offers", locations.job_offers)
    storage.put_bytes(locations.jobs_file, (demo_night_folder / "job_descriptions.json").read_bytes())
    put_a_model_every_candidate_beats_in_production(storage, locations, zeroed_folder)
    return locations, storage


def read_cv_vectors(storage, embeddings_uri: str):
    """The current CV embeddings as one pyarrow table (all parts), or None before the first refresh."""
    import pyarrow as pa

    from include.matcher.foundations.pointers import read_current
    from include.matcher.stages.embeddings import read_parquet

    current = read_current(storage, embeddings_uri)
    if current is None:
        return None
    parts = storage.get_json(current["manifest"])["parts"]["cvs"]
    return pa.concat_tables([read_parquet(part["uri"], storage) for part in parts])


def report_json(run: str, candidate: str, version: str, promote: bool = True, mrr: float = 0.8) -> dict:
    """The smallest validation report the readers accept, for tests that arrange a decision by hand."""
    metrics = {"metrics": {"mrr@10": mrr}}
    return {
        "created_at": "2026-11-25T02:00:00+00:00",
        "run": run,
        "candidate": candidate,
        "version": version,
        "production": {"name": "all-MiniLM-L6-v2", "version": None},
        "held_out": {"count": 0},
        "candidate_metrics": metrics,
        "production_metrics": {"metrics": {"mrr@10": 0.0}},
        "decision": {"promote": promote, "primary_metric": "mrr@10", "reason": "test"},
    }
