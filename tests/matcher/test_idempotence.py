"""Re-running a task of a run (an Airflow retry) writes the same outputs at the same keys."""

from include.matcher.foundations.context import RunContext
from include.matcher.foundations.settings import PipelineConfig
from include.matcher.foundations.uris import join_uri
from include.matcher.stages.ingest import ingest
from include.matcher.stages.pairs import build_pairs
from include.matcher.stages.parse import parse


def snapshot(storage, prefix):
    bucket = prefix.split("/")[2]
    return {info.key: storage.get_bytes(f"s3://{bucket}/{info.key}") for info in storage.list(prefix)}


def test_parse_and_build_pairs_retries_are_idempotent(storage, locations, demo_folder):
    storage.upload_dir(demo_folder / "cvs", locations.raw_cvs)
    storage.put_bytes(locations.jobs_file, (demo_folder / "job_descriptions.json").read_bytes())
    run = join_uri(locations.work, "runs", "r1")
    manifest = ingest(run, locations, storage)
    config = PipelineConfig(locations=locations)

    corpus = parse(manifest, run, locations, storage)
    pairs = build_pairs(corpus, RunContext(run, config, storage))
    first = snapshot(storage, run)
    ledger = storage.get_bytes(join_uri(locations.work, "state", "ledger.json"))

    assert parse(manifest, run, locations, storage) == corpus  # the retry after the ledger commit
    assert build_pairs(corpus, RunContext(run, config, storage)) == pairs
    second = snapshot(storage, run)
    for key in [key for key in first if key.endswith(("parse/summary.json", "/stats.json"))]:
        first.pop(key), second.pop(key)  # only their cache-hit counts differ
    assert first == second
    assert storage.get_bytes(join_uri(locations.work, "state", "ledger.json")) == ledger
