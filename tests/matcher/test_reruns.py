"""Re-runs and failures lose nothing: a cleared ingest keeps its run's manifest, a night that failed
after parsing leaves work for the next, a bad jobs file stops the run before anything is marked seen,
and a job offer that bombs the parser costs one reject."""

from __future__ import annotations

import time
import zlib

import pytest

from include.matcher.foundations import layout
from include.matcher.foundations.context import RunContext
from include.matcher.foundations.settings import ParseLimits, PipelineConfig
from include.matcher.foundations.uris import join_uri
from include.matcher.stages.corpus import record_trained
from include.matcher.stages.ingest import ingest
from include.matcher.stages.pairs import build_pairs
from include.matcher.stages.parse import parse


def upload_demo(storage, locations, demo_folder):
    storage.upload_dir(demo_folder / "cvs", locations.raw_cvs)
    storage.put_bytes(locations.jobs_file, (demo_folder / "job_descriptions.json").read_bytes())


def test_ingest_then_parse_rerun_with_the_same_run_id_keep_their_outputs(storage, locations, demo_folder):
    upload_demo(storage, locations, demo_folder)
    run = join_uri(locations.work, "runs", "rerun")
    manifest_uri = ingest(run, locations, storage)
    manifest = storage.get_bytes(manifest_uri)
    parse(manifest_uri, run, locations, storage)
    parsed = storage.get_bytes(join_uri(run, "parse", "parsed.jsonl"))
    assert parsed.count(b"\n") == 30

    assert ingest(run, locations, storage) == manifest_uri  # cleared after the ledger commit
    assert storage.get_bytes(manifest_uri) == manifest
    parse(manifest_uri, run, locations, storage)
    assert storage.get_bytes(join_uri(run, "parse", "parsed.jsonl")) == parsed
    assert storage.get_json(join_uri(run, "parse", "summary.json"))["parsed"] == 30


def test_a_night_that_failed_after_parsing_leaves_its_cvs_to_the_next_night(storage, locations, demo_folder):
    upload_demo(storage, locations, demo_folder)
    failed = join_uri(locations.work, "runs", "failed-night")
    parse(ingest(failed, locations, storage), failed, locations, storage)  # ... then training failed

    retry = join_uri(locations.work, "runs", "next-night")
    manifest = storage.get_json(ingest(retry, locations, storage))
    assert manifest["counts"]["new"] == 0 and manifest["untrained_corpus"] and manifest["has_work"]
    corpus = parse(join_uri(retry, "manifest.json"), retry, locations, storage)
    pairs = build_pairs(corpus, RunContext(retry, PipelineConfig(locations=locations), storage))
    assert sum(storage.get_json(join_uri(pairs, "summary.json"))["cvs_by_split"].values()) == 30

    record_trained(retry, locations, storage, "refused")  # the gate decided: the work is done
    quiet = storage.get_json(ingest(join_uri(locations.work, "runs", "quiet-night"), locations, storage))
    assert not quiet["untrained_corpus"] and not quiet["has_work"]


@pytest.mark.parametrize(
    "body, message",
    [(b"{not json", "not valid JSON"), (b"[]", "non-empty JSON object"), (b'{"CHEF": ""}', "category 'CHEF'")],
)
def test_a_malformed_jobs_file_fails_at_ingest_with_the_ledger_untouched(
    storage, locations, demo_folder, body, message
):
    upload_demo(storage, locations, demo_folder)
    storage.put_bytes(locations.jobs_file, body)
    run = join_uri(locations.work, "runs", "bad-jobs")
    with pytest.raises(ValueError, match=f"jobs file {locations.jobs_file} is not usable.*{message}"):
        ingest(run, locations, storage)
    assert not storage.exists(layout.ledger(locations.work)) and not storage.exists(join_uri(run, "manifest.json"))


def pdf_bomb(inflated_bytes: int = 40_000_000) -> bytes:
    """A valid few-kilobyte PDF whose one page's content stream inflates to ``inflated_bytes`` of text operators."""
    line = b"BT /F1 9 Tf 20 20 Td (bomb) Tj ET\n"
    content = zlib.compress(line * (inflated_bytes // len(line)), 9)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1) + b"".join(
        b"%010d 00000 n \n" % o for o in offsets
    )
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def test_a_decompression_bomb_job_offer_is_a_reject_in_bounded_time(storage, locations, demo_folder):
    from include.matcher.stages.embeddings import job_offer_records

    upload_demo(storage, locations, demo_folder)
    bomb = pdf_bomb()
    assert len(bomb) < 200_000
    storage.put_bytes(join_uri(locations.job_offers, "bomb.pdf"), bomb)
    storage.upload_dir(demo_folder / "job-offers", locations.job_offers)
    started = time.monotonic()
    records, rejects = job_offer_records(locations, storage, ParseLimits(timeout_s=3, memory_mb=1024, workers=1))
    assert time.monotonic() - started < 60
    # pdfium counts its objects and stops it before reading them (too_large); where it gets further,
    # the worker's time or memory limit stops it
    assert [(r["key"].rsplit("/", 1)[-1], r["reason"]) for r in rejects if r["key"].endswith("bomb.pdf")] in (
        [("bomb.pdf", "too_large")],
        [("bomb.pdf", "timeout")],
        [("bomb.pdf", "memory")],
    )
    assert [r["source"] for r in records].count("job_offer") == 1  # the demo's real offer is still there
