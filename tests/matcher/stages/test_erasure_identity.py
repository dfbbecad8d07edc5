"""Erasure erases exactly that person, says truthfully what it found, and finishes what it starts
(issue 27, cases 1, 2, 4-9, 17), on the real S3 after a real ingest, parse and pairs (no training:
what is checked here is which records go, not what a model learned)."""

from __future__ import annotations

import io
import json
import random
import unicodedata
from dataclasses import replace
from types import SimpleNamespace

import pytest

from include.matcher.foundations import layout
from include.matcher.foundations.context import RunContext
from include.matcher.foundations.settings import PipelineConfig, SplitConfig
from include.matcher.foundations.uris import join_uri
from include.matcher.stages.corpus import Ledger, read_ledger
from include.matcher.stages.erasure import ErasureReceipt, ErasureRequestError, erase
from include.matcher.stages.ingest import ingest
from include.matcher.stages.pairs import build_pairs
from include.matcher.stages.parse import parse
from tests.helpers import remove_buckets

TWIN_A, TWIN_B, START_A, START_B = "twin-a.txt", "twin-b.txt", "start-a.txt", "start-b.txt"


def everything(storage, locations) -> dict[str, bytes]:
    bucket = locations.work.split("/")[2]
    return {info.uri: storage.get_bytes(info.uri) for info in storage.list(f"s3://{bucket}")}


def upload_cvs(storage, locations, seed: int, per_category: int = 3, raw_cvs: str | None = None) -> str:
    """The demo job descriptions and ``per_category`` generated CVs a category (``cv0.txt``...); the
    first category's name."""
    from include.devtools.demo_data import JOB_DESCRIPTIONS, cv_text

    rng = random.Random(seed)
    storage.put_json(locations.jobs_file, JOB_DESCRIPTIONS)
    for name in JOB_DESCRIPTIONS:
        for i in range(per_category):
            storage.put_bytes(join_uri(raw_cvs or locations.raw_cvs, name, f"cv{i}.txt"), cv_text(name, rng).encode())
    return sorted(JOB_DESCRIPTIONS)[0]


def run_night(storage, locations, name: str) -> str:
    """ingest, parse and pairs (every CV in the training split): the run's pairs URI."""
    run = join_uri(locations.work, "runs", name)
    config = PipelineConfig(locations=locations, split=SplitConfig(validation_fraction=0, test_fraction=0))
    corpus = parse(ingest(run, locations, storage, force=True), run, locations, storage)
    return build_pairs(corpus, RunContext(run, config, storage))


@pytest.fixture
def category(storage, locations) -> str:
    """Three CVs a category, plus two CVs with the same bytes under two keys and two that share only
    their first 300 characters: four people."""
    from include.devtools.demo_data import cv_text

    chosen = upload_cvs(storage, locations, 11)
    rng = random.Random(12)
    twin = cv_text(chosen, rng)
    start = cv_text(chosen, rng)
    other = cv_text(chosen, rng)
    bodies = {TWIN_A: twin, TWIN_B: twin, START_A: start, START_B: start[:300] + "\n" + other}
    for file, body in bodies.items():
        storage.put_bytes(join_uri(locations.raw_cvs, chosen, file), body.encode())
    return chosen


def rows_naming(storage, pairs_uri: str, key: str) -> dict[str, int]:
    """How many rows of each pairs file (and the corpus) name ``key``."""
    counts = {}
    for info in storage.list(pairs_uri):
        if info.uri.endswith(".jsonl"):
            counts[info.uri.rsplit("/", 1)[-1]] = sum(key in json.dumps(r) for r in storage.get_jsonl(info.uri))
    return counts


def assert_aligned(storage, pairs_uri: str) -> None:
    rows = len(storage.get_jsonl(join_uri(pairs_uri, "train.jsonl")))
    assert rows == len(storage.get_jsonl(join_uri(pairs_uri, "training_metadata.jsonl")))


def test_only_the_erased_cv_goes_when_others_share_its_bytes_or_its_start(storage, locations, category):
    pairs = run_night(storage, locations, "night-1")
    key = {
        name: f"{locations.raw_cvs.split('/', 3)[3]}/{category}/{name}" for name in (TWIN_A, TWIN_B, START_A, START_B)
    }
    before = {name: rows_naming(storage, pairs, k) for name, k in key.items()}
    assert all(before[name]["training_metadata.jsonl"] > 0 for name in key), before
    train_rows = len(storage.get_jsonl(join_uri(pairs, "train.jsonl")))
    ledger, _ = read_ledger(storage, locations)
    twin_text = ledger["objects"][key[TWIN_A]]["text_uri"]
    assert twin_text == ledger["objects"][key[TWIN_B]]["text_uri"]  # one text, two people

    receipt = erase([f"{category}/{TWIN_A}"], [], locations, storage)
    assert receipt["cvs_found"] == 1 and receipt["not_found"] == 0
    for name in (TWIN_B, START_A, START_B):
        assert rows_naming(storage, pairs, key[name]) == before[name], name
    assert rows_naming(storage, pairs, key[TWIN_A])["training_metadata.jsonl"] == 0
    assert_aligned(storage, pairs)
    assert (
        len(storage.get_jsonl(join_uri(pairs, "train.jsonl"))) == train_rows - before[TWIN_A]["training_metadata.jsonl"]
    )
    assert storage.exists(twin_text)  # the other person's text stays
    assert storage.exists(join_uri(locations.raw_cvs, category, TWIN_B))

    erase([f"{category}/{START_A}"], [], locations, storage)
    assert rows_naming(storage, pairs, key[START_B]) == before[START_B]
    assert_aligned(storage, pairs)

    # The second of the twins: found, its rows gone (not "nothing left"), and now the shared text too.
    last = erase([f"{category}/{TWIN_B}"], [], locations, storage)
    assert last["cvs_found"] == 1 and last["records_removed"] > 0 and not last["nothing_left"]
    assert rows_naming(storage, pairs, key[TWIN_B])["training_metadata.jsonl"] == 0
    assert not storage.exists(twin_text)
    assert_aligned(storage, pairs)


@pytest.mark.parametrize(
    ("keys", "hashes"),
    [
        ([], ["key"]),
        ([], ["parsed"]),
        ([], ["CHEF"]),
        ([], ["a" * 63]),
        (["CHEF"], []),
        (["../.."], []),
        (["CHEF/../x.txt"], []),
        (["CHEF//x.txt"], []),
        ([""], []),
        (["CHEF/sub/x.txt"], []),
        (["s3://elsewhere/raw/cvs/CHEF/x.txt"], []),
        (["key"], []),
    ],
)
def test_what_is_not_a_cv_s_key_or_a_content_hash_is_refused_before_anything_changes(
    storage, locations, category, keys, hashes
):
    """``erase --content-hash key`` once stripped the ``key`` field from every corpus and manifest."""
    run_night(storage, locations, "night-1")
    before = everything(storage, locations)
    with pytest.raises(ErasureRequestError):
        erase(keys, hashes, locations, storage)
    assert everything(storage, locations) == before
    ledger, _ = read_ledger(storage, locations)
    assert all("key" in row for row in storage.get_jsonl(join_uri(locations.work, "runs", "night-1", "corpus.jsonl")))
    assert len(ledger["objects"]) == 5 * 3 + 4


def test_a_key_is_found_in_either_unicode_form_and_one_that_names_nothing_says_so(storage, locations, cli_env):
    """A file uploaded from macOS (NFD) erased with the name typed elsewhere (NFC); a misspelt key."""
    import subprocess
    import sys

    from include.devtools.demo_data import cv_text

    chosen = upload_cvs(storage, locations, 3)
    rng = random.Random(4)

    def erase_cli(key: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "include.matcher", "erase", "--key", key]
        return subprocess.run(command, env=cli_env, capture_output=True, text=True, timeout=300)

    nfd = unicodedata.normalize("NFD", f"{chosen}/José Núñez.txt")
    storage.put_bytes(join_uri(locations.raw_cvs, nfd), cv_text(chosen, rng).encode())
    run_night(storage, locations, "night-1")
    assert any(
        k.endswith(unicodedata.normalize("NFD", "José Núñez.txt"))
        for k in read_ledger(storage, locations)[0]["objects"]
    )

    missing = erase([f"{chosen}/Jose Nunez.txt"], [], locations, storage)
    assert (
        missing["not_found"] == 1
        and missing["nothing_left"]
        and missing["not_found_values"] == [f"{chosen}/Jose Nunez.txt"]
    )
    assert missing["records_removed"] == 0

    done = erase_cli(f"{chosen}/Jose Nunez.txt")
    assert (
        done.returncode == 3
        and "not found: " in done.stderr
        and json.loads(done.stdout.splitlines()[-1])["not_found"] == 1
    )

    erased = erase([unicodedata.normalize("NFC", f"{chosen}/José Núñez.txt")], [], locations, storage)
    assert erased["cvs_found"] == 1 and erased["not_found"] == 0 and erased["records_removed"] > 0
    assert not any("Jos" in k for k in read_ledger(storage, locations)[0]["objects"])
    assert not storage.exists(join_uri(locations.raw_cvs, nfd))

    again = erase_cli(f"{chosen}/José Núñez.txt")
    assert again.returncode == 3 and "nothing found to erase" in again.stdout
    bad = erase_cli("../..")
    assert (
        bad.returncode == 2
        and bad.stderr.strip().startswith("error: '../..' is not")
        and len(bad.stderr.strip().splitlines()) == 1
    )


def test_a_cv_ingested_from_a_prefix_in_another_bucket_is_erased_with_its_raw_file(storage, locations):

    other = replace(locations, raw_cvs=f"s3://{locations.work.split('/')[2]}-other/cvs")
    storage.ensure_bucket(other.raw_cvs.split("/")[2])
    try:
        chosen = upload_cvs(storage, locations, 4, raw_cvs=other.raw_cvs)
        run_night(storage, other, "trial")
        raw = join_uri(other.raw_cvs, chosen, "cv0.txt")
        receipt = erase([raw], [], locations, storage)  # the deployment's locations, the other bucket's URI
        assert receipt["cvs_found"] == 1 and receipt["by_area"]["raw"] == 1
        assert not storage.exists(raw)
        assert not [k for k in read_ledger(storage, locations)[0]["objects"] if k == f"cvs/{chosen}/cv0.txt"]
    finally:
        remove_buckets(storage, other)


def a_live_snapshot(storage, locations, keys: list[str]) -> None:
    """A current embeddings snapshot holding ``keys`` (what search serves), written as publish writes one."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    snapshot = layout.Snapshot(join_uri(locations.embeddings, "v1", "night-1-0123456789ab"))
    part = snapshot.cv_part(0, 1)
    buffer = io.BytesIO()
    pq.write_table(pa.table({"key": keys, "vector": [[0.1, 0.2]] * len(keys)}), buffer)
    storage.put_bytes(part, buffer.getvalue())
    storage.put_json(snapshot.manifest, {"parts": {"cvs": [{"uri": part, "rows": len(keys)}], "jobs": []}})
    storage.put_json(
        layout.current_embeddings(locations.embeddings),
        {"version": "v1", "uri": snapshot.uri, "manifest": snapshot.manifest},
    )


def test_the_snapshot_s_name_stays_the_same_length_however_many_erasures_and_a_failed_one_finishes_on_rerun(
    storage, locations, category, monkeypatch
):
    """The 60th erasure of a day once failed with KeyTooLongError after tombstoning, leaving the CV searchable."""
    from include.matcher.foundations.pointers import read_current
    from include.matcher.stages import erasure

    run_night(storage, locations, "night-1")
    ledger, _ = read_ledger(storage, locations)
    keys = sorted(ledger["objects"])
    a_live_snapshot(storage, locations, keys)
    lengths = []
    for key in keys[:4]:
        erase([key], [], locations, storage)
        lengths.append(len(read_current(storage, locations.embeddings)["uri"]))
    assert len(set(lengths)) == 1, lengths

    # An erasure that dies after its tombstone (S3 gone, the worker killed) is finished by running it again.
    victim = keys[-1]  # (not a twin: a text another person shares stays)
    text_uri = ledger["objects"][victim]["text_uri"]

    def die(*args, **kwargs):
        raise ConnectionError("the worker died")

    monkeypatch.setattr(erasure, "delete_sources", die)
    with pytest.raises(ConnectionError):
        erase([victim], [], locations, storage)
    monkeypatch.undo()
    assert storage.exists(text_uri) and read_ledger(storage, locations)[0]["erasing"]  # half done
    finished = erase([victim], [], locations, storage)
    assert finished["cvs_found"] == 1 and not finished["nothing_left"]
    assert not storage.exists(text_uri) and not storage.exists(f"s3://{locations.raw_cvs.split('/')[2]}/{victim}")
    assert read_ledger(storage, locations)[0]["erasing"] == {}  # nothing names it once done


def test_the_dry_run_lists_what_the_real_run_changes_and_the_receipt_names_no_one(storage, locations, category):
    from include.matcher.serving.usage_log import SearchLog, read_search_log
    from include.matcher.stages.corpus import erasure_secret, key_hash

    run_night(storage, locations, "night-1")
    key = sorted(read_ledger(storage, locations)[0]["objects"])[0]
    log = SearchLog(storage, locations, flush_seconds=3600)
    log.record(
        user="u", query="cook", k=2, filters={}, version="v1", snapshot="s", hits=[SimpleNamespace(id=key, score=0.9)]
    )
    assert log.flush() == 1

    planned = erase([key], [], locations, storage, dry_run=True)
    done = erase([key], [], locations, storage)
    assert {c["uri"] for c in planned["changes"]} == {c["uri"] for c in done["changes"]}
    assert any("/audit/matches/" in c["uri"] for c in done["changes"])  # the search log is in both lists
    secret = erasure_secret(storage, locations)
    receipt = storage.get_bytes(storage.list(layout.erasure_receipts(locations.work))[0].uri).decode()
    assert key_hash(secret, key) not in receipt and key not in receipt and "targets" not in json.loads(receipt)
    stored = json.loads(receipt)  # what the erasure wrote, every key declared, reads back as the same JSON
    assert ErasureReceipt.written(stored).to_json() == stored and stored["cvs_found"] == 1
    assert {k: v for k, v in done.items() if k not in ("changes", "not_found_values")} == stored
    ledger = storage.get_json(layout.ledger(locations.work))  # committed by parse, then by the erasure
    assert Ledger.written(ledger).to_json() == ledger and ledger["erased"] and key not in ledger["objects"]
    assert key_hash(secret, key) not in json.dumps(read_search_log(storage, locations))


def test_a_search_queued_before_an_erasure_and_written_after_it_does_not_name_the_cv(storage, locations, category):
    from include.matcher.serving.usage_log import SearchLog, read_search_log
    from include.matcher.stages.corpus import erasure_secret, key_hash

    run_night(storage, locations, "night-1")
    erased, kept = sorted(read_ledger(storage, locations)[0]["objects"])[:2]
    log = SearchLog(storage, locations, flush_seconds=3600)
    hits = [SimpleNamespace(id=erased, score=0.9), SimpleNamespace(id=kept, score=0.8)]
    log.record(user="u", query="cook", k=2, filters={}, version="v1", snapshot="s", hits=hits)
    erase([erased], [], locations, storage)
    assert log.flush() == 1
    secret = erasure_secret(storage, locations)
    (record,) = read_search_log(storage, locations)
    assert [hit["candidate"] for hit in record["returned"]] == [key_hash(secret, kept)]


def test_a_search_log_batch_that_cannot_be_written_is_kept_and_written_later(storage, locations, caplog):
    """S3 refusing a write (here: the bucket is not there yet) used to drop the whole batch."""
    from include.matcher.serving.usage_log import SearchLog, read_search_log

    absent = replace(locations, work=locations.work.replace("s3://test-", "s3://later-", 1))
    log = SearchLog(storage, absent, flush_seconds=3600)
    log.record(user="u", query="q", k=1, filters={}, version="v1", snapshot="s", hits=[])
    try:
        assert log.flush() == 0
        assert "kept to retry" in caplog.text
        storage.ensure_bucket(absent.work.split("/")[2])
        log.record(user="u2", query="q", k=1, filters={}, version="v1", snapshot="s", hits=[])
        assert log.flush() == 2
        assert [r["user"] for r in read_search_log(storage, absent)] == ["u", "u2"]
    finally:
        remove_buckets(storage, absent)


# -- an erasure wins whatever stage a night is in (case 3) ------------------------------------------


def test_a_candidate_trained_on_a_cv_erased_while_the_night_trained_is_never_promoted(storage, locations, category):
    from include.matcher.foundations.pointers import read_production
    from include.matcher.stages.erasure import production_trained_on_erased
    from include.matcher.stages.registry import PromotionRefused, promote_night, version_for
    from tests.helpers import report_json

    pairs = run_night(storage, locations, "night-1")
    run = join_uri(locations.work, "runs", "night-1")
    in_memory = storage.get_jsonl(join_uri(pairs, "training_metadata.jsonl"))  # what fine_tune read at its start
    key = in_memory[0]["source_key"]
    erase([key], [], locations, storage)  # lands while the model trains
    candidate = join_uri(run, "candidate")  # the training ends after it, writing what it trained on
    storage.put_bytes(join_uri(candidate, "model.safetensors"), b"weights")
    storage.put_jsonl(join_uri(candidate, "training_metadata.jsonl"), in_memory)
    report_uri = join_uri(candidate, "validation_report.json")
    storage.put_json(report_uri, report_json(run, candidate, version_for(run)))
    context = RunContext(run, PipelineConfig(locations=locations), storage)
    with pytest.raises(PromotionRefused, match="erased"):
        promote_night(report_uri, context)
    assert read_production(storage, locations.registry) is None
    assert candidate in storage.get_json(layout.erased_training(locations.work))["models"]
    assert not production_trained_on_erased(locations, storage)


def test_an_erasure_while_the_embeddings_are_refreshed_leaves_no_vector_of_the_cv(storage, locations, tmp_path):
    """Once: "parts hold 44 CVs, the corpus 42" and a part file holding the key and its vector for 90 days."""
    from include.matcher.foundations.pointers import read_current
    from include.matcher.stages.embeddings import embed_part, plan_refresh, publish_embeddings, read_parquet
    from tests.helpers import put_a_model_every_candidate_beats_in_production

    upload_cvs(storage, locations, 8, per_category=2)
    version = put_a_model_every_candidate_beats_in_production(storage, locations, tmp_path / "zeroed")
    run = join_uri(locations.work, "runs", "night-1")
    corpus = parse(ingest(run, locations, storage, force=True), run, locations, storage)
    shards = plan_refresh(version, corpus, locations, storage, shard_size=4)
    keys = [row["key"] for row in storage.get_jsonl(corpus)]
    erased = keys[0]
    first = embed_part(shards[0], storage)  # read and encoded before the erasure...
    late_write = {uri: storage.get_bytes(uri) for uri in (first, layout.Snapshot.part_stats(first))}
    erase([erased], [], locations, storage, keep_raw=True)
    for uri, blob in late_write.items():  # ...and written after it
        storage.put_bytes(uri, blob)
    parts = [first] + [embed_part(uri, storage) for uri in shards[1:]]
    published = publish_embeddings(version, corpus, parts, locations, storage)
    assert read_current(storage, locations.embeddings)["uri"] == published
    held = [
        key
        for info in storage.list(locations.embeddings)
        if info.uri.endswith(".parquet")
        for key in read_parquet(info.uri, storage, ["id"]).column("id").to_pylist()
    ]
    assert erased not in held and sorted(set(held) & set(keys)) == sorted(keys[1:])


def test_an_erasure_while_a_night_parses_the_cv_takes_its_fresh_text_too(storage, locations, category):
    from include.matcher.stages.parse import collect, parse_shard, plan_shards

    run = join_uri(locations.work, "runs", "night-1")
    context = RunContext(run, PipelineConfig(locations=locations), storage)
    manifest = ingest(run, locations, storage, force=True)
    outcomes = [parse_shard(shard, context) for shard in plan_shards(manifest, context)]
    key = sorted(item["key"] for item in storage.get_json(manifest)["items"])[-1]
    texts_before = {info.uri for info in storage.list(join_uri(locations.work, "texts"))}
    receipt = erase([key], [], locations, storage)  # parsed, not yet collected into the ledger
    assert receipt["cvs_found"] == 1
    collect(manifest, outcomes, context)
    ledger, _ = read_ledger(storage, locations)
    assert key not in ledger["objects"]
    texts_now = {info.uri for info in storage.list(join_uri(locations.work, "texts"))}
    assert {e["text_uri"] for e in ledger["objects"].values()} == texts_now  # no orphan holds its text
    assert len(texts_before - texts_now) == 1
    assert erase([key], [], locations, storage)["nothing_left"]


def test_the_same_file_uploaded_again_after_an_erasure_is_new_data_and_one_left_in_place_is_not(
    storage, locations, category
):
    """A candidate who applies again with the same CV (same bytes, same ETag) was tombstoned for ever."""
    import time

    run_night(storage, locations, "night-1")
    kept_key, gone_key = (f"{category}/cv0.txt", f"{category}/cv1.txt")
    erase([kept_key], [], locations, storage, keep_raw=True)  # the source system owns it: left in place
    gone = join_uri(locations.raw_cvs, gone_key)
    body = storage.get_bytes(gone)
    written = storage.head(gone).modified
    erase([gone_key], [], locations, storage)
    assert not storage.exists(gone)
    for _ in range(30):  # S3 keeps the second an object was written: the re-upload comes in a later one
        storage.put_bytes(gone, body)
        if storage.head(gone).modified[:19] != written[:19]:
            break
        time.sleep(0.2)
    manifest = storage.get_json(ingest(join_uri(locations.work, "runs", "night-2"), locations, storage))
    changes = {item["key"].split("/", 2)[-1]: item["change"] for item in manifest["items"]}
    assert changes.get(gone_key) == "new"  # applied again: new data
    assert kept_key not in changes and manifest["counts"]["erased"] == 1  # the erased one left in place: skipped


def test_a_carried_out_request_run_again_returns_its_receipt_past_one_this_version_cannot_read(storage, locations):
    from include.matcher.stages.erasure import erase_by_request, submit_request

    request = submit_request(["CHEF/nobody.txt"], [], locations, storage)
    storage.put_json(layout.erasure_receipt(locations.work, "2020-01-01T00:00:00", "old"), {"at": "2020-01-01"})
    first = erase_by_request(request, locations, storage)
    again = erase_by_request(request, locations, storage)  # a cleared task: the same receipt, nothing erased twice
    assert again["repeated"] and again["id"] == first["id"] and again["not_found"] == 1
