"""Erasure on the real S3 after a real night: nothing under work/, registry/ or embeddings/ names the
erased CV (its key, its text, its vectors), search never returns it, a racing night cannot bring it
back, a dry run changes nothing, and a second erasure finds nothing left."""

from __future__ import annotations

import json
import logging

import pytest

from include.matcher.foundations.context import RunContext
from include.matcher.foundations.settings import GateConfig, PipelineConfig, TrainingConfig
from include.matcher.foundations.uris import join_uri
from include.matcher.stages.corpus import read_ledger
from include.matcher.stages.erasure import erase, production_trained_on_erased
from include.matcher.stages.ingest import ingest
from include.matcher.stages.parse import parse
from tests.helpers import production_matcher

CANARY = "ZEPHYRINE-ERASE-ME-7741"
ERASED_FILE = "grill-cook-erase-me.txt"


def everything(storage, locations) -> dict[str, bytes]:
    bucket = locations.work.split("/")[2]
    return {
        f"s3://{bucket}/{info.key}": storage.get_bytes(f"s3://{bucket}/{info.key}")
        for info in storage.list(f"s3://{bucket}")
    }


def holders(storage, locations) -> list[str]:
    """Every object (raw prefix included) whose bytes name the erased CV or hold its text."""
    return [
        uri for uri, body in everything(storage, locations).items() if CANARY.encode() in body or b"erase-me" in body
    ]


def a_night(storage, locations, name: str) -> str:
    """ingest, parse, pairs, fine-tune, validate, promote (arranged), refresh: the night's corpus URI."""
    from include.matcher.stages.embeddings import refresh_embeddings
    from include.matcher.stages.pairs import build_pairs
    from include.matcher.stages.registry import promote
    from include.matcher.stages.training import fine_tune
    from include.matcher.stages.validation import validate

    run = join_uri(locations.work, "runs", name)
    config = PipelineConfig(locations=locations, training=TrainingConfig(epochs=1, batch_size=8, max_seq_length=64))
    corpus = parse(ingest(run, locations, storage, force=True), run, locations, storage)
    pairs = build_pairs(corpus, RunContext(run, config, storage))
    candidate = fine_tune(pairs, RunContext(run, config, storage))
    report_uri = validate(candidate, pairs, run, locations, GateConfig(audit_names_per_group=1, audit_cvs=4), storage)
    report = storage.get_json(report_uri)  # the promotion the scan needs is arranged
    storage.put_json(report_uri, {**report, "decision": {**report["decision"], "promote": True}})
    refresh_embeddings(promote(report_uri, locations.registry, storage), corpus, locations, storage)
    return corpus


@pytest.fixture
def night(storage, locations):
    import random

    from include.devtools.demo_data import JOB_DESCRIPTIONS, cv_text

    rng = random.Random(5)
    storage.put_json(locations.jobs_file, JOB_DESCRIPTIONS)
    for category in JOB_DESCRIPTIONS:
        for i in range(5):
            storage.put_bytes(join_uri(locations.raw_cvs, category, f"cv{i}.txt"), cv_text(category, rng).encode())
    category = sorted(JOB_DESCRIPTIONS)[0]
    title, *rest = cv_text(category, rng).split("\n")
    body = "\n".join([title, f"{rest[0]} reference {CANARY}", *rest[1:]])
    storage.put_bytes(join_uri(locations.raw_cvs, category, ERASED_FILE), body.encode())
    a_night(storage, locations, "night-1")
    return f"{category}/{ERASED_FILE}"


def test_erase_reaches_every_copy_and_search_stops_returning_the_cv(storage, locations, night, caplog):
    found = holders(storage, locations)
    areas = {
        area
        for area in ("/texts/", "/pairs/", "/candidate/", "/validation/", "/registry/", "/embeddings/", "/raw/")
        if any(area in uri for uri in found)
    }
    # (held-out vectors hold it only when its content hash puts it in the test split)
    assert areas >= {"/texts/", "/pairs/", "/candidate/", "/registry/", "/embeddings/", "/raw/"}, found
    matcher = production_matcher(storage, locations)
    query = "Grill cook kitchen restaurant"
    assert any(m.id.endswith(ERASED_FILE) for m in matcher.top_candidates(query, k=100))
    from include.matcher.serving.usage_log import search_log

    search_log(storage, locations).flush()  # the search's record names the CV (by keyed hash)

    before = everything(storage, locations)
    planned = erase([night], [], locations, storage, dry_run=True)
    assert planned["dry_run"] and planned["changes"] and everything(storage, locations) == before

    with caplog.at_level(logging.INFO):
        receipt = erase([night], [], locations, storage, by="dpo")
    assert holders(storage, locations) == []
    from include.matcher.serving.usage_log import read_search_log
    from include.matcher.stages.corpus import erasure_secret, key_hash

    erased_hash = key_hash(erasure_secret(storage, locations), join_uri(locations.raw_cvs, night).split("/", 3)[3])
    logged = read_search_log(storage, locations)
    assert logged and erased_hash not in json.dumps(logged)  # the search before it: its record no longer names it
    assert {c["uri"] for c in receipt["changes"]} == {c["uri"] for c in planned["changes"]}
    assert not any(
        m.id.endswith(ERASED_FILE) for m in production_matcher(storage, locations).top_candidates(query, k=100)
    )
    assert CANARY not in caplog.text and "erase-me" not in caplog.text

    ledger, _ = read_ledger(storage, locations)
    assert not [k for k in ledger["objects"] if "erase-me" in k] and len(ledger["erased"]) >= 1
    receipts = storage.list(join_uri(locations.work, "audit", "erasures"))
    stored = json.loads(storage.get_bytes(receipts[0].uri))
    assert len(receipts) == 1 and stored["by"] == "dpo" and stored["records_removed"] > 0
    assert stored["models_trained_on_it"] and production_trained_on_erased(locations, storage)

    again = erase([night], [], locations, storage)
    assert again["nothing_left"] and again["not_found"] == 1 and again["records_removed"] == 0

    # The next night has work (the corpus changed), retrains without the CV, and never brings it back.
    assert json.loads(storage.get_bytes(ingest(join_uri(locations.work, "runs", "night-2"), locations, storage)))[
        "has_work"
    ]
    a_night(storage, locations, "night-3")
    assert holders(storage, locations) == []
    assert not production_trained_on_erased(locations, storage)


def test_a_source_owned_raw_file_is_not_ingested_again_until_it_changes(storage, locations, night):
    erase([night], [], locations, storage, keep_raw=True)
    raw = join_uri(locations.raw_cvs, night)
    assert storage.exists(raw)
    manifest = json.loads(storage.get_bytes(ingest(join_uri(locations.work, "runs", "quiet"), locations, storage)))
    assert manifest["counts"]["erased"] == 1 and not [i for i in manifest["items"] if i["key"].endswith(ERASED_FILE)]
    assert "erase-me" not in json.dumps(manifest)
    storage.put_bytes(raw, b"A new application: line cook, six years of grill and kitchen work. " * 3)
    again = json.loads(storage.get_bytes(ingest(join_uri(locations.work, "runs", "reapplied"), locations, storage)))
    assert [i["change"] for i in again["items"] if i["key"].endswith(ERASED_FILE)] == ["new"]


def test_a_night_that_listed_the_cv_before_the_erasure_drops_it_when_it_commits(storage, locations, night):
    """The racing night: its manifest (and parse) came before the erasure, its ledger commit after."""
    from include.matcher.stages.corpus import read_ledger

    storage.put_bytes(
        join_uri(locations.raw_cvs, night), f"Changed CV, still {CANARY}, kitchen and grill.".encode() * 3
    )
    run = join_uri(locations.work, "runs", "racing")
    manifest_uri = ingest(run, locations, storage)
    assert [i for i in storage.get_json(manifest_uri)["items"] if i["key"].endswith(ERASED_FILE)]
    erase([night], [], locations, storage, keep_raw=True)
    corpus = parse(manifest_uri, run, locations, storage)
    ledger, _ = read_ledger(storage, locations)
    assert not [k for k in ledger["objects"] if k.endswith(ERASED_FILE)]
    assert not [row for row in storage.get_jsonl(corpus) if row["key"].endswith(ERASED_FILE)]
    texts = storage.list(join_uri(locations.work, "texts"))
    assert not [info for info in texts if CANARY.encode() in storage.get_bytes(info.uri)]


@pytest.mark.s3
def test_the_cli_and_the_matcher_page_say_production_was_trained_on_erased_data(storage, locations, night, tmp_path):
    import os
    import subprocess
    import sys

    from include.matcher.pages.dashboard import render
    from tests.helpers import PROJECT_ROOT, aws_connection_json  # noqa: F401

    env = {
        **os.environ,
        "PYTHONPATH": str(PROJECT_ROOT),
        **{var: getattr(locations, name) for name, var in locations.ENV.items()},
    }

    def cli(*args):
        done = subprocess.run(
            [sys.executable, "-m", "include.matcher", *args], env=env, capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout.strip().splitlines()

    dry = cli("erase", "--key", night, "--dry-run")
    assert any(line.startswith("would rewrite ") for line in dry) and json.loads(dry[-1])["dry_run"]
    done = json.loads(cli("erase", "--key", night, "--by", "dpo")[-1])
    assert done["records_removed"] > 0 and done["by_area"]["embeddings"] >= 1
    assert json.loads(cli("production")[-1])["trained_on_erased_data"] is True
    assert "trained on data erased since" in render(storage, locations)
    again = subprocess.run(
        [sys.executable, "-m", "include.matcher", "erase", "--key", night], env=env, capture_output=True, text=True
    )
    assert again.returncode == 3 and again.stdout.splitlines()[-2] == "nothing found to erase"
