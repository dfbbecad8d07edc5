import pytest

from include.devtools.demo_data import render_pdf
from include.matcher.foundations import layout
from include.matcher.foundations.context import RunContext
from include.matcher.foundations.uris import join_uri
from include.matcher.stages.corpus import load_corpus_texts, read_ledger
from include.matcher.stages.ingest import ingest
from include.matcher.stages.parse import parse

GOOD = "Chef de partie\nPrepared sauces and managed the grill station for a busy bistro. " * 3


def test_every_file_ends_in_exactly_one_place_and_text_is_cached(storage, locations):
    storage.put_json(locations.jobs_file, {"CHEF": "cook"})
    files = {
        "CHEF/good.pdf": render_pdf(GOOD),
        "CHEF/good.txt": GOOD.encode(),
        "CHEF/same-bytes-again.txt": GOOD.encode(),
        "CHEF/empty.pdf": b"",
        "CHEF/fake.pdf": b"plain text, not a pdf " * 10,
    }
    for key, body in files.items():
        storage.put_bytes(join_uri(locations.raw_cvs, key), body)
    run = join_uri(locations.work, "runs", "r1")
    corpus_uri = parse(ingest(run, locations, storage), run, locations, storage)

    parsed = storage.get_jsonl(join_uri(run, "parse", "parsed.jsonl"))
    rejects = storage.get_jsonl(join_uri(run, "parse", "rejects.jsonl"))
    assert sorted(r["key"].rsplit("/", 1)[1] for r in parsed + rejects) == sorted(k.split("/")[1] for k in files)
    assert {r["key"].rsplit("/", 1)[1]: r["reason"] for r in rejects} == {
        "empty.pdf": "empty",
        "fake.pdf": "wrong_type",
    }
    summary = storage.get_json(join_uri(run, "parse", "summary.json"))
    assert summary["rejects_by_reason"] == {"empty": 1, "wrong_type": 1}
    assert summary["cache_hits"] + len(parsed) + len(rejects) >= len(files)

    corpus = load_corpus_texts(corpus_uri, storage)
    assert len(corpus) == 3 and all("grill station" in row["text"] for row in corpus)
    ledger, _ = read_ledger(storage, locations)
    assert {entry["status"] for entry in ledger["objects"].values()} == {"parsed", "rejected"}


def test_a_fixed_file_is_parsed_on_the_next_night(storage, locations):
    storage.put_json(locations.jobs_file, {"CHEF": "cook"})
    key = join_uri(locations.raw_cvs, "CHEF/cv.pdf")
    storage.put_bytes(key, b"")
    run1 = join_uri(locations.work, "runs", "r1")
    parse(ingest(run1, locations, storage), run1, locations, storage)
    assert storage.get_jsonl(join_uri(run1, "parse", "rejects.jsonl"))[0]["reason"] == "empty"

    storage.put_bytes(key, render_pdf(GOOD))
    run2 = join_uri(locations.work, "runs", "r2")
    corpus_uri = parse(ingest(run2, locations, storage), run2, locations, storage)
    assert [row["key"] for row in storage.get_jsonl(corpus_uri)] == [key.split("/", 3)[3]]


def test_unchanged_content_under_a_new_key_is_not_parsed_again(storage, locations):
    storage.put_json(locations.jobs_file, {"CHEF": "cook"})
    pdf = render_pdf(GOOD)
    storage.put_bytes(join_uri(locations.raw_cvs, "CHEF/a.pdf"), pdf)
    run1 = join_uri(locations.work, "runs", "r1")
    parse(ingest(run1, locations, storage), run1, locations, storage)
    storage.put_bytes(join_uri(locations.raw_cvs, "CHEF/copy-of-a.pdf"), pdf)
    run2 = join_uri(locations.work, "runs", "r2")
    parse(ingest(run2, locations, storage), run2, locations, storage)
    assert storage.get_json(join_uri(run2, "parse", "summary.json"))["cache_hits"] == 1


def test_shards_cover_the_manifest_and_merge_to_the_same_corpus(storage, locations):
    from include.matcher.foundations.settings import PipelineConfig
    from include.matcher.stages.parse import collect_parsed, parse_shard, plan_parse_shards

    storage.put_json(locations.jobs_file, {"CHEF": "cook"})
    for index in range(5):
        storage.put_bytes(join_uri(locations.raw_cvs, f"CHEF/cv-{index}.txt"), f"{GOOD} number {index}".encode())
    storage.put_bytes(join_uri(locations.raw_cvs, "CHEF/broken.pdf"), b"%PDF-1.4 truncated")
    run = join_uri(locations.work, "runs", "r1")
    manifest = ingest(run, locations, storage)

    shards = plan_parse_shards(manifest, run, storage, shard_size=4)
    assert [storage.get_json(uri)["name"] for uri in shards] == ["shard 1/2: files 1-4", "shard 2/2: files 5-6"]
    outcomes = [parse_shard(uri, RunContext(run, PipelineConfig(locations=locations), storage)) for uri in shards]

    # A merge that misses a shard would lose files: it stops instead of committing.
    with pytest.raises(RuntimeError, match="do not cover the manifest"):
        collect_parsed(manifest, outcomes[:1], run, locations, storage)
    assert read_ledger(storage, locations)[1] is None  # nothing committed

    corpus = storage.get_jsonl(collect_parsed(manifest, outcomes, run, locations, storage))
    assert len(corpus) == 5
    assert storage.get_json(join_uri(run, "parse", "summary.json"))["rejected"] == 1


def test_a_night_with_nothing_to_parse_still_plans_one_empty_shard(storage, locations):
    from include.matcher.stages.parse import plan_parse_shards

    storage.put_json(locations.jobs_file, {"CHEF": "cook"})
    run = join_uri(locations.work, "runs", "r1")
    shards = plan_parse_shards(ingest(run, locations, storage), run, storage, shard_size=10)
    assert [storage.get_json(uri)["name"] for uri in shards] == ["shard 1/1: empty"]


def test_a_file_deleted_between_ingest_and_parse_is_an_outcome_and_the_night_goes_on(storage, locations):
    """Parse once failed on every retry with "no object at ...": a file gone since the manifest is
    accounted like a reject (``vanished``), and the next night finds it removed."""
    storage.put_json(locations.jobs_file, {"CHEF": "cook"})
    for name in ("stays.txt", "goes.txt"):
        storage.put_bytes(join_uri(locations.raw_cvs, "CHEF", name), GOOD.replace("bistro", name).encode())
    run = join_uri(locations.work, "runs", "r1")
    manifest = ingest(run, locations, storage)
    storage.delete(join_uri(locations.raw_cvs, "CHEF", "goes.txt"))

    corpus = parse(manifest, run, locations, storage)

    rejects = storage.get_jsonl(join_uri(run, "parse", "rejects.jsonl"))
    assert [(r["key"].rsplit("/", 1)[1], r["reason"]) for r in rejects] == [("goes.txt", "vanished")]
    assert [row["key"].rsplit("/", 1)[1] for row in storage.get_jsonl(corpus)] == ["stays.txt"]
    later = storage.get_json(ingest(join_uri(locations.work, "runs", "r2"), locations, storage))
    assert [key.rsplit("/", 1)[1] for key in later["removed"]] == ["goes.txt"]


def test_a_cached_text_past_today_s_limits_is_a_reject_and_stages_read_what_a_model_reads(storage, locations):
    """A text cached before the character limit existed (or under a higher one) is judged by today's
    limits on a cache hit; and what the later stages load of any CV is cut to what a model reads."""
    import json

    from include.matcher.foundations.encoding import MOST_WORDS_READ
    from include.matcher.foundations.settings import ParseLimits
    from include.matcher.foundations.text import text_fingerprint
    from include.matcher.stages.parse import content_hash

    storage.put_json(locations.jobs_file, {"CHEF": "cook"})
    long_text = " ".join(f"word{i}" for i in range(MOST_WORDS_READ * 2))
    body = long_text.encode()
    storage.put_bytes(join_uri(locations.raw_cvs, "CHEF/long.txt"), body)
    run = join_uri(locations.work, "runs", "r1")
    corpus = parse(ingest(run, locations, storage), run, locations, storage)
    (row,) = load_corpus_texts(corpus, storage)
    assert len(row["text"].split()) == MOST_WORDS_READ and long_text.startswith(row["text"])
    cached = json.loads(storage.get_bytes(layout.text_cache(locations.work, content_hash(body))))
    assert cached["text"] == long_text and cached["text_hash"] == text_fingerprint(long_text)

    storage.put_bytes(join_uri(locations.raw_cvs, "CHEF/again.txt"), body)  # same bytes: a cache hit
    again = join_uri(locations.work, "runs", "r2")
    parse(ingest(again, locations, storage), again, locations, storage, limits=ParseLimits(max_chars=10_000))
    rejects = storage.get_jsonl(join_uri(again, "parse", "rejects.jsonl"))
    assert [(r["key"].rsplit("/", 1)[1], r["reason"]) for r in rejects] == [("again.txt", "too_long")]


def test_a_change_of_pdf_extractor_parses_every_pdf_again_so_a_corpus_never_mixes_two(storage, locations):
    """Each text records what made it; a deployment that switches MATCHER_PDF_EXTRACTOR (or an
    upgrade of the reconstruction) gets every PDF, changed or not, parsed again on its next night,
    past the content-keyed cache: no corpus holds texts from two extractors."""
    from include.matcher.foundations.pdf_text import WORDS_VERSION
    from include.matcher.foundations.settings import ParseLimits

    storage.put_json(locations.jobs_file, {"CHEF": "cook"})
    for name in ("a", "b"):
        storage.put_bytes(join_uri(locations.raw_cvs, f"CHEF/{name}.pdf"), render_pdf(f"{name} {GOOD}"))
    storage.put_bytes(join_uri(locations.raw_cvs, "CHEF/c.txt"), GOOD.encode())
    storage.put_bytes(join_uri(locations.raw_cvs, "CHEF/broken.pdf"), b"%PDF-1.4 " + b"\x00" * 300)

    def night(name: str, extractor: str) -> tuple[dict, dict]:
        limits = ParseLimits(pdf_extractor=extractor)
        run = join_uri(locations.work, "runs", name)
        manifest_uri = ingest(run, locations, storage, limits=limits)
        parse(manifest_uri, run, locations, storage, limits=limits)
        ledger, _ = read_ledger(storage, locations)
        return storage.get_json(manifest_uri)["counts"], ledger["objects"]

    def made_by(objects: dict) -> dict:
        return {key.rsplit("/", 1)[1]: entry.get("extractor", entry["status"]) for key, entry in objects.items()}

    counts, objects = night("r1", "pdfplumber")
    assert made_by(objects) == {"a.pdf": "pdfplumber", "b.pdf": "pdfplumber", "c.txt": "text", "broken.pdf": "rejected"}
    counts, _ = night("r2", "pdfplumber")
    assert counts["new"] + counts["changed"] + counts["reparse"] == 0  # nothing to do

    counts, objects = night("r3", "pdfium")
    assert counts["reparse"] == 3 and counts["new"] == counts["changed"] == 0  # the PDFs, the reject too
    assert made_by(objects) == {"a.pdf": "pdfium", "b.pdf": "pdfium", "c.txt": "text", "broken.pdf": "rejected"}
    cached = storage.get_json(objects[join_uri(locations.raw_cvs, "CHEF/a.pdf").split("/", 3)[3]]["text_uri"])
    assert cached["parser"] == f"pdfium:{WORDS_VERSION}" and cached["extractor"] == "pdfium"
    assert cached["extractor_version"].startswith(f"words v{WORDS_VERSION}, pypdfium2")
    summary = storage.get_json(join_uri(locations.work, "runs", "r3", "parse", "summary.json"))
    assert summary["parsed_by_extractor"] == {"pdfium": 2}
    assert night("r4", "pdfium")[0]["reparse"] == 0
