"""Retention on the real S3: old runs lose their CV text and vectors (reports stay), surplus
snapshots and orphan texts go, the search log stays its six months, and nothing a night running
now, the current snapshot or a rollback needs is touched."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from include.matcher.foundations import layout
from include.matcher.foundations.uris import join_uri
from include.matcher.stages.housekeeping import housekeep

NOW = datetime.now(UTC)


def put_run(storage, locations, name: str, age_days: float) -> str:
    run = join_uri(locations.work, "runs", name)
    storage.put_json(join_uri(run, "manifest.json"), {"created_at": (NOW - timedelta(days=age_days)).isoformat()})
    for part in ("pairs/train.jsonl", "pairs/test.jsonl", "checkpoints/latest.json"):
        storage.put_bytes(join_uri(run, part), b'{"text": "a CV"}\n')
    storage.put_bytes(join_uri(run, "validation", "held_out_vectors.parquet"), b"vectors")
    storage.put_bytes(join_uri(run, "validation", "vector_memo.parquet"), b"vectors")
    for part in (
        "candidate/training_metadata.jsonl",
        "candidate/validation_report.json",
        "candidate/model.safetensors",
    ):
        storage.put_bytes(join_uri(run, part), b"{}")
    return run


def put_snapshot(storage, locations, name: str, written: int) -> str:
    snapshot = layout.Snapshot(join_uri(locations.embeddings, "v-1", name))
    storage.put_bytes(snapshot.cv_part(0, 1), b"vectors")
    storage.put_json(snapshot.manifest, {"written_at": f"2026-11-{written:02d}T02:00:00"})
    return snapshot.uri


def test_housekeeping_deletes_what_retention_says_and_keeps_what_is_in_use(storage, locations):
    old, running = put_run(storage, locations, "old-night", 100), put_run(storage, locations, "tonight", 0)
    snapshots = [put_snapshot(storage, locations, f"night-{i}", i) for i in range(1, 5)]
    storage.put_json(
        layout.current_embeddings(locations.embeddings),
        {"uri": snapshots[0], "manifest": layout.Snapshot(snapshots[0]).manifest, "version": "v-1"},
    )
    unfinished = join_uri(locations.embeddings, "v-1", "publishing-now", "cvs", "part-0001-of-0001.parquet")
    storage.put_bytes(unfinished, b"vectors")
    referenced, orphan = join_uri(locations.work, "texts", "a.json"), join_uri(locations.work, "texts", "b.json")
    for uri in (referenced, orphan):
        storage.put_json(uri, {"text": "a CV"})
    storage.put_json(
        layout.ledger(locations.work),
        {
            "objects": {
                "k": {"key": "k", "etag": '"e"', "size": 1, "category": "C", "text_uri": referenced, "status": "parsed"}
            }
        },
    )
    matches = join_uri(locations.work, "audit", "matches")
    old_day, recent_day = (NOW - timedelta(days=200)).date(), (NOW - timedelta(days=150)).date()
    for day in (old_day, recent_day):
        storage.put_jsonl(join_uri(matches, day.isoformat(), "x.jsonl"), [{"user": "u"}])

    before = {info.uri for info in storage.list(f"s3://{locations.work.split('/')[2]}")}
    dry = housekeep(locations, storage, dry_run=True)
    assert {info.uri for info in storage.list(f"s3://{locations.work.split('/')[2]}")} == before
    # two days on: the orphan text is past its grace; every run's age is read from its manifest
    done = housekeep(locations, storage, now=NOW + timedelta(days=2))
    assert done["run_parts"] == 5 and done["snapshots"] == 1 and done["texts"] == 1 and done["search_log_days"] == 1
    assert dry["run_parts"] == 5 and dry["texts"] == 0  # (today the orphan is still within its grace)

    left = {info.uri for info in storage.list(f"s3://{locations.work.split('/')[2]}")}
    assert not [uri for uri in left if uri.startswith(join_uri(old, "pairs") + "/")]
    assert (
        not {
            join_uri(old, "validation", "held_out_vectors.parquet"),
            join_uri(old, "validation", "vector_memo.parquet"),
            join_uri(old, "candidate", "training_metadata.jsonl"),
        }
        & left
    )
    assert {
        join_uri(old, "candidate", "validation_report.json"),
        join_uri(old, "candidate", "model.safetensors"),
    } <= left
    assert join_uri(running, "pairs", "train.jsonl") in left  # a night running now
    assert layout.Snapshot(snapshots[0]).manifest in left  # current.json's, though the oldest
    assert {layout.Snapshot(s).manifest for s in snapshots[2:]} <= left and layout.Snapshot(
        snapshots[1]
    ).manifest not in left
    assert unfinished in left  # a publish in progress
    assert referenced in left and orphan not in left
    assert any(recent_day.isoformat() in uri for uri in left) and not any(old_day.isoformat() in uri for uri in left)


def test_after_housekeeping_the_rollback_reaches_every_version(storage, locations):
    from include.matcher.foundations.pointers import read_production
    from include.matcher.stages.operations import rollback_and_refresh
    from tests.matcher.stages.test_operations import promoted_version

    storage.put_json(locations.jobs_file, {"CHEF": "Cook in a kitchen."})
    first = promoted_version(storage, locations, "night-1").rsplit("/", 1)[-1]
    promoted_version(storage, locations, "night-2")
    for run in ("night-1", "night-2"):
        storage.put_json(
            join_uri(locations.work, "runs", run, "manifest.json"), {"created_at": "2026-01-01T00:00:00+00:00"}
        )
    registry_before = {info.uri: info.etag for info in storage.list(locations.registry)}
    housekeep(locations, storage, now=NOW + timedelta(days=400))
    assert {
        info.uri: info.etag for info in storage.list(locations.registry) if not info.uri.endswith("production.json")
    } == {uri: etag for uri, etag in registry_before.items() if not uri.endswith("production.json")}
    rollback_and_refresh(first, locations, storage)
    assert read_production(storage, locations.registry).version == first
    assert json.loads(storage.get_bytes(layout.production_pointer(locations.registry)))["version"] == first


@pytest.mark.model
def test_a_night_with_housekeeping_between_each_of_its_stages_completes(storage, locations):
    """Housekeeping runs while a night runs: between every stage, over an older night's leftovers too."""
    import random

    from include.devtools.demo_data import JOB_DESCRIPTIONS, cv_text
    from include.matcher.foundations.context import RunContext
    from include.matcher.foundations.settings import GateConfig, PipelineConfig, TrainingConfig
    from include.matcher.stages.embeddings import refresh_embeddings
    from include.matcher.stages.ingest import ingest
    from include.matcher.stages.pairs import build_pairs
    from include.matcher.stages.parse import parse
    from include.matcher.stages.registry import promote
    from include.matcher.stages.training import fine_tune
    from include.matcher.stages.validation import validate
    from tests.helpers import production_matcher

    old = put_run(storage, locations, "old-night", 100)
    rng = random.Random(2)
    storage.put_json(locations.jobs_file, JOB_DESCRIPTIONS)
    for category in JOB_DESCRIPTIONS:
        for i in range(4):
            storage.put_bytes(join_uri(locations.raw_cvs, category, f"cv{i}.txt"), cv_text(category, rng).encode())
    run = join_uri(locations.work, "runs", "tonight")
    context = RunContext(
        run,
        PipelineConfig(locations=locations, training=TrainingConfig(epochs=1, batch_size=8, max_seq_length=64)),
        storage,
    )
    swept = []

    def sweep():
        swept.append(housekeep(locations, storage))

    manifest = ingest(run, locations, storage)
    sweep()
    corpus = parse(manifest, run, locations, storage)
    sweep()
    pairs = build_pairs(corpus, context)
    sweep()
    candidate = fine_tune(pairs, context)
    sweep()
    report_uri = validate(candidate, pairs, run, locations, GateConfig(audit_names_per_group=1, audit_cvs=4), storage)
    sweep()
    report = storage.get_json(report_uri)  # the promotion is arranged: this test is about retention
    storage.put_json(report_uri, {**report, "decision": {**report["decision"], "promote": True}})
    version = promote(report_uri, locations.registry, storage)
    sweep()
    refresh_embeddings(version, corpus, locations, storage)
    sweep()

    assert swept[0]["run_parts"] == 5 and all(s["run_parts"] == 0 for s in swept[1:])  # the old night's, once
    assert not storage.exists(join_uri(old, "pairs", "train.jsonl"))
    assert all(s["texts"] == 0 and s["snapshots"] == 0 for s in swept)  # nothing of tonight's was touched
    assert storage.exists(join_uri(run, "pairs", "train.jsonl")) and storage.exists(
        join_uri(run, "candidate", "training_metadata.jsonl")
    )
    assert len(production_matcher(storage, locations).top_candidates("Line cook for a grill", k=5)) == 5


def test_housekeeping_between_a_cache_hit_on_an_orphan_text_and_collect_leaves_the_text(storage, locations):
    """A CV re-uploaded with the bytes of one removed earlier hits its orphaned text in the cache; a
    housekeeping run before ``collect`` used to delete it, and the ledger then pointed at nothing."""
    import random

    from include.devtools.demo_data import JOB_DESCRIPTIONS, cv_text
    from include.matcher.foundations.context import RunContext
    from include.matcher.foundations.settings import PipelineConfig
    from include.matcher.stages.corpus import load_corpus_texts, read_ledger
    from include.matcher.stages.ingest import ingest
    from include.matcher.stages.parse import collect, parse, parse_shard, plan_shards

    rng = random.Random(2)
    storage.put_json(locations.jobs_file, JOB_DESCRIPTIONS)
    chosen = sorted(JOB_DESCRIPTIONS)[0]
    body = cv_text(chosen, rng).encode()
    storage.put_bytes(join_uri(locations.raw_cvs, chosen, "first.txt"), body)
    storage.put_bytes(join_uri(locations.raw_cvs, chosen, "other.txt"), cv_text(chosen, rng).encode())
    for name in ("night-1", "night-2"):  # parsed, then its file removed: its text is an orphan
        run = join_uri(locations.work, "runs", name)
        parse(ingest(run, locations, storage), run, locations, storage)
        storage.delete(join_uri(locations.raw_cvs, chosen, "first.txt"))
    (orphan,) = {info.uri for info in storage.list(join_uri(locations.work, "texts"))} - {
        entry["text_uri"] for entry in read_ledger(storage, locations)[0]["objects"].values()
    }

    storage.put_bytes(join_uri(locations.raw_cvs, chosen, "again.txt"), body)
    run = join_uri(locations.work, "runs", "night-3")
    context = RunContext(run, PipelineConfig(locations=locations), storage)
    manifest = ingest(run, locations, storage)
    outcomes = [parse_shard(shard, context) for shard in plan_shards(manifest, context)]
    assert [row["text_uri"] for uri in outcomes for row in storage.get_jsonl(uri)] == [orphan]  # a cache hit
    found = housekeep(locations, storage, now=NOW + timedelta(days=2))  # the orphan is days old by now
    assert orphan not in found["deleted"]["texts"] and storage.exists(orphan)
    corpus = collect(manifest, outcomes, context)
    again = next(e for k, e in read_ledger(storage, locations)[0]["objects"].items() if k.endswith("again.txt"))
    assert again["text_uri"] == orphan and len(load_corpus_texts(corpus, storage)) == 2  # every text is there


def test_a_settled_day_of_the_search_log_becomes_one_object_so_an_erasure_reads_a_day_not_a_batch(storage, locations):
    """An erasure once read the log one object at a time: 3,000 batch objects, 11 s (months of use: hours)."""
    from include.matcher.serving.usage_log import read_search_log
    from include.matcher.stages.housekeeping import compact_search_log_day

    log = layout.search_log(locations.work)
    days = [(NOW - timedelta(days=age)).date().isoformat() for age in (5, 4, 3, 0)]
    for day in days:
        for batch in range(12):
            records = [
                {"at": f"{day}T10:{batch:02d}:{i:02d}", "user": "u", "returned": [{"candidate": f"h{batch}-{i}"}]}
                for i in range(3)
            ]
            storage.put_jsonl(join_uri(log, day, f"10{batch:02d}00-{batch:012d}.jsonl"), records)
    before = read_search_log(storage, locations)
    done = housekeep(locations, storage, now=NOW)
    assert done["search_log_batches_merged"] == 3 and done["search_log_days"] == 0
    objects = [info.uri for info in storage.list(log)]
    assert len(objects) == 3 + 12  # one a settled day; today's batches as written
    assert read_search_log(storage, locations) == before  # every record, once, in order

    # Interrupted after writing the merged object, before deleting a batch: run again, nothing doubles.
    settled = join_uri(log, days[0])
    storage.put_jsonl(join_uri(settled, "100000-000000000000.jsonl"), before[:3])
    compact_search_log_day(settled, [info.uri for info in storage.list(settled)], storage)
    assert read_search_log(storage, locations) == before and len(storage.list(settled)) == 1
