"""CV text is personal data: the stages log keys, counts and reasons, never the text."""

import logging

from include.matcher.ingest import ingest
from include.matcher.pairs import build_pairs
from include.matcher.parse import parse
from include.matcher.settings import PipelineConfig
from include.matcher.storage import join_uri

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
        build_pairs(corpus, run, PipelineConfig(locations=locations), storage)
    assert caplog.records, "the stages should log something"
    assert SECRET not in caplog.text
