"""CV text is personal data: the stages log keys, counts and reasons, never the text."""

import logging

import pytest

from include.matcher.foundations.context import RunContext
from include.matcher.foundations.settings import PipelineConfig
from include.matcher.foundations.uris import join_uri
from include.matcher.stages.ingest import ingest
from include.matcher.stages.pairs import build_pairs
from include.matcher.stages.parse import parse

SECRET = "Zanzibar-Quixotic-Phone-0712345678"


def test_stages_never_log_cv_text(storage, locations, caplog):
    storage.put_json(locations.jobs_file, {"CHEF": "Cook.", "PILOT": "Pilot."})
    for i, category in enumerate(["CHEF", "PILOT"] * 5):
        body = f"{category} candidate {i}. Contact {SECRET}. " + "Experienced professional with many skills. " * 4
        storage.put_bytes(join_uri(locations.raw_cvs, category, f"cv{i}.txt"), body.encode())
    storage.put_bytes(join_uri(locations.raw_cvs, "CHEF", "broken.pdf"), f"{SECRET} not a pdf".encode() * 10)
    run = join_uri(locations.work, "runs", "privacy")
    with caplog.at_level(logging.DEBUG):
        corpus = parse(ingest(run, locations, storage), run, locations, storage)
        build_pairs(corpus, RunContext(run, PipelineConfig(locations=locations), storage))
    assert caplog.records, "the stages should log something"
    assert SECRET not in caplog.text


@pytest.mark.model
def test_no_artefact_outside_texts_and_pairs_holds_cv_text(storage, locations, caplog):
    """A whole night over CVs that each carry a unique canary; then every object the pipeline wrote
    outside ``texts/`` and ``pairs/`` (registry, embeddings, run reports, model cards), the Matcher
    pages and every log line are scanned for any canary."""
    import random
    import uuid

    from include.devtools.demo_data import JOB_DESCRIPTIONS, cv_text
    from include.matcher.foundations.settings import GateConfig, TrainingConfig
    from include.matcher.pages.dashboard import render, report_html
    from include.matcher.stages.embeddings import refresh_embeddings
    from include.matcher.stages.registry import promote
    from include.matcher.stages.training import fine_tune
    from include.matcher.stages.validation import validate

    rng = random.Random(3)
    canaries = []
    storage.put_json(locations.jobs_file, JOB_DESCRIPTIONS)
    for category in JOB_DESCRIPTIONS:
        for i in range(7):
            canary = f"CANARY{uuid.uuid4().hex[:12]}"
            canaries.append(canary)
            title, name, *rest = cv_text(category, rng).split("\n")
            body = "\n".join([title, f"{name} {canary}", *rest[:-1], f"Reference code {canary}.", rest[-1]])
            storage.put_bytes(join_uri(locations.raw_cvs, category, f"cv{i}.txt"), body.encode())

    run = join_uri(locations.work, "runs", "canary-night")
    config = PipelineConfig(locations=locations, training=TrainingConfig(epochs=1, batch_size=8, max_seq_length=128))
    with caplog.at_level(logging.DEBUG):
        corpus = parse(ingest(run, locations, storage), run, locations, storage)
        pairs = build_pairs(corpus, RunContext(run, config, storage))
        candidate = fine_tune(pairs, RunContext(run, config, storage))
        report_uri = validate(candidate, pairs, run, locations, GateConfig(), storage)
        # This test is about where CV text goes, not about what a 1-epoch run learns: the promotion the
        # scan needs (the registry written) is arranged, whatever the gate decided.
        report = storage.get_json(report_uri)
        storage.put_json(report_uri, {**report, "decision": {**report["decision"], "promote": True}})
        version_uri = promote(report_uri, locations.registry, storage)
        refresh_embeddings(version_uri, corpus, locations, storage)
        pages = render(storage, locations) + report_html(storage, locations, "canary-night")

    bucket = locations.work.split("/")[2]
    texts, run_pairs = join_uri(locations.work, "texts"), join_uri(run, "pairs")
    scanned = 0
    for info in storage.list(f"s3://{bucket}"):
        uri = f"s3://{bucket}/{info.key}"
        if uri.startswith((texts + "/", run_pairs + "/", locations.raw_cvs + "/")):
            continue
        body = storage.get_bytes(uri).decode("utf-8", errors="replace")
        scanned += 1
        assert not [c for c in canaries if c in body], f"CV text leaked into {uri}"
    assert scanned > 30 and storage.exists(join_uri(version_uri, "README.md"))
    assert not [c for c in canaries if c in pages]
    assert not [c for c in canaries if c in caplog.text]
    assert any(
        c in storage.get_bytes(join_uri(run_pairs, "train.jsonl")).decode() for c in canaries
    )  # the scan would see them


def test_object_keys_are_logged_escaped_so_a_key_cannot_forge_a_log_line(storage, locations, caplog):
    storage.put_json(locations.jobs_file, {"CHEF": "Cook.", "PILOT": "Pilot."})
    forged = "CHEF/x.pdf\nERROR all CVs deleted"
    storage.put_bytes(join_uri(locations.raw_cvs, forged), b"not a pdf at all " * 10)
    storage.put_bytes(join_uri(locations.raw_cvs, "CHEF", "notes\nWARNING forged.md"), b"x")
    run = join_uri(locations.work, "runs", "forged-keys")
    with caplog.at_level(logging.INFO):
        parse(ingest(run, locations, storage), run, locations, storage)
    assert "\nERROR all CVs deleted" not in caplog.text and "\\nERROR all CVs deleted" in caplog.text
    assert "\nWARNING forged" not in caplog.text
