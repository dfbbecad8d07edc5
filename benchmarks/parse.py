"""PDF text: the pdfium extractor against pdfplumber, side by side on the same files in one run.

    .venv/bin/python benchmarks/parse.py [--limit 0] [--stage-limit 200] [--results benchmarks/RESULTS.md]

Each shared resume is read by both extractors in the same worker, one after the other, through the
product's own ``extract_text`` (pdfium with its fallback to pdfplumber, and pdfplumber alone), so
the machine's load weighs on both alike; one worker per core. Reported:
- files/s per core of each (files over the summed seconds spent in it), the ratio
  ``fast_vs_pdfplumber`` (the fallback's pdfplumber time counted in the pdfium side);
- token agreement per file: multiset Jaccard of lower-cased word tokens (``\\w+``), mean and 5th
  percentile, and the worst ten files with the tokens each side has that the other lacks;
- ``fallback_share``: files the pdfium path handed to pdfplumber, and why;
- whether both ended every file the same way (parsed, or rejected for the same reason);
- the parse stage (ingest + parse, isolated workers, S3) on ``--stage-limit`` files with each
  extractor, one worker, fresh buckets;
- the 10M-CV backfill in core-hours at the measured per-core rate.
Targets (issue 23): >= 10x pdfplumber's files/s per core; agreement mean >= 0.98, p5 >= 0.95.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import sys
import tempfile
import time
from collections import Counter
from multiprocessing import get_context
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import benchmark_parser, commit, record, shared_data_missing, throwaway_s3  # noqa: E402

BACKFILL = 10_000_000


def tokens(text: str) -> Counter:
    return Counter(re.findall(r"\w+", text.lower()))


def agreement(first: str, second: str) -> float:
    a, b = tokens(first), tokens(second)
    union = sum((a | b).values())
    return 1.0 if union == 0 else sum((a & b).values()) / union


def read_both(path: str) -> dict:
    """One file through both extractors: seconds, outcome and text of each."""
    from include.matcher.foundations.documents import Rejected, extract_text
    from include.matcher.foundations.settings import ParseLimits

    data = Path(path).read_bytes()
    row = {"file": path}
    for name in ("pdfium", "pdfplumber"):
        started = time.perf_counter()
        try:
            parsed = extract_text(data, path, ParseLimits(pdf_extractor=name))
            row[name] = {"outcome": "parsed", "text": parsed.text, "fallback": parsed.fallback}
        except Rejected as rejected:
            row[name] = {"outcome": rejected.reason, "text": "", "fallback": ""}
        row[name]["seconds"] = time.perf_counter() - started
    return row


def warm_up(path: str) -> None:  # imports kept out of the measured seconds
    read_both(path)


def stage_seconds(blobs: list[tuple[str, bytes]], extractor: str, fresh_locations) -> float:
    from include.matcher.foundations.settings import ParseLimits
    from include.matcher.foundations.uris import join_uri
    from include.matcher.stages.ingest import ingest
    from include.matcher.stages.parse import parse

    storage, locations = fresh_locations()  # a fresh bucket: nothing comes from the text cache
    storage.put_json(locations.jobs_file, {"X": "x"})
    for key, data in blobs:
        storage.put_bytes(join_uri(locations.raw_cvs, key), data)
    limits = ParseLimits(workers=1, pdf_extractor=extractor)
    run = join_uri(locations.work, "runs", extractor)
    started = time.perf_counter()
    parse(ingest(run, locations, storage, limits=limits), run, locations, storage, limits)
    return time.perf_counter() - started


def main() -> int:
    parser = benchmark_parser(__doc__)
    parser.add_argument("--limit", type=int, default=0, help="files to compare (0: all)")
    parser.add_argument("--stage-limit", type=int, default=200, help="files through the parse stage (0: skip)")
    args = parser.parse_args()
    if shared_data_missing(args.resumes):
        return 0
    files = sorted(args.resumes.glob("*/*.pdf"))
    if args.limit:
        files = files[:: max(1, len(files) // args.limit)][: args.limit]
    cores = os.cpu_count() or 1

    started = time.perf_counter()
    with get_context("spawn").Pool(cores) as pool:
        pool.map(warm_up, [str(files[0])] * cores, chunksize=1)
        rows = pool.map(read_both, [str(path) for path in files], chunksize=8)
    wall = time.perf_counter() - started

    seconds = {name: sum(row[name]["seconds"] for row in rows) for name in ("pdfium", "pdfplumber")}
    per_core = {name: len(rows) / seconds[name] for name in seconds}
    ratio = per_core["pdfium"] / per_core["pdfplumber"]

    def score(row: dict) -> float:  # a file the two end differently agrees in nothing
        if row["pdfium"]["outcome"] != row["pdfplumber"]["outcome"]:
            return 0.0
        return agreement(row["pdfium"]["text"], row["pdfplumber"]["text"])

    scored = sorted(((score(row), row) for row in rows), key=lambda pair: pair[0])
    scores = [score for score, _ in scored]
    mean, p5 = sum(scores) / len(scores), scores[int(0.05 * len(scores))]
    fallbacks = Counter(
        re.sub(r"\d+", "N", re.sub(r"^page \d+: ", "", row["pdfium"]["fallback"])).split("(")[0].strip()
        for row in rows
        if row["pdfium"]["fallback"]
    )
    fallback_share = sum(fallbacks.values()) / len(rows)
    # How far the texts are from the fallback's thresholds (pdf_text.looks_wrong), per file.
    from include.matcher.foundations import pdf_text

    texts = [row["pdfium"]["text"] for row in rows if row["pdfium"]["outcome"] == "parsed"]
    density = sorted((len(t) - t.count(" ") - t.count("\n")) / max(1, t.count(" ") + t.count("\n")) for t in texts)
    longest = sorted(max((len(w) for w in t.split() if "/" not in w and "@" not in w), default=0) for t in texts)
    different_outcomes = [row for row in rows if row["pdfium"]["outcome"] != row["pdfplumber"]["outcome"]]
    outcomes = Counter(row["pdfium"]["outcome"] for row in rows)

    stage = {}
    if args.stage_limit:
        subset = files[:: max(1, len(files) // args.stage_limit)][: args.stage_limit]
        blobs = [(f"{path.parent.name}/{path.name}", path.read_bytes()) for path in subset]
        with throwaway_s3(Path(tempfile.mkdtemp(prefix="matcher-parse-bench-"))) as (_, fresh_locations):
            stage = {name: stage_seconds(blobs, name, fresh_locations) for name in ("pdfium", "pdfplumber")}

    backfill = {name: BACKFILL / rate / 3600 for name, rate in per_core.items()}
    lines = [
        f"### parse: {datetime.date.today()} commit {commit()}, {len(rows)} PDF resumes, {cores} workers, {wall:.0f} s",
        "",
        "| extractor | files/s per core | vs pdfplumber | 10M-CV backfill |",
        "| --- | --- | --- | --- |",
        f"| pdfium (words rebuilt; pdfplumber fallback counted in) | {per_core['pdfium']:.1f} | {ratio:.1f}x "
        f"| {backfill['pdfium']:.0f} core-hours |",
        f"| pdfplumber | {per_core['pdfplumber']:.2f} | 1.0x | {backfill['pdfplumber']:.0f} core-hours |",
        "",
        f"Token agreement with pdfplumber (multiset Jaccard of lower-cased word tokens): mean {mean:.4f}, "
        f"5th percentile {p5:.4f}, lowest {scores[0]:.4f}; {sum(s == 1.0 for s in scores)} of {len(scores)} "
        "files identical in tokens.",
        f"Fallback to pdfplumber: {sum(fallbacks.values())} files ({fallback_share:.2%})"
        + (": " + ", ".join(f"{why} {count}" for why, count in fallbacks.most_common()) if fallbacks else "")
        + ".",
        f"Distance to the fallback's thresholds: characters per space p99 {density[int(0.99 * len(density))]:.1f}, "
        f"highest {density[-1]:.1f} (falls back above {pdf_text.MAX_CHARS_PER_SPACE}); longest word p99 "
        f"{longest[int(0.99 * len(longest))]}, highest {longest[-1]} (falls back above {pdf_text.LONGEST_WORD}).",
        f"Outcomes: {dict(outcomes)}; files the two ended differently: {len(different_outcomes)}"
        + "".join(f", {Path(row['file']).name}" for row in different_outcomes[:10])
        + ".",
    ]
    if stage:
        lines.append(
            f"Parse stage (ingest + parse, 1 isolated worker, S3, {len(blobs)} files): pdfium "
            f"{len(blobs) / stage['pdfium']:.1f} files/s, pdfplumber {len(blobs) / stage['pdfplumber']:.2f} files/s "
            f"({stage['pdfplumber'] / stage['pdfium']:.1f}x)."
        )
    lines += ["", "Worst ten (tokens only pdfium has / only pdfplumber has):", ""]
    lines += ["| file | agreement | only pdfium | only pdfplumber |", "| --- | --- | --- | --- |"]
    for score, row in scored[:10]:
        fast, reference = tokens(row["pdfium"]["text"]), tokens(row["pdfplumber"]["text"])
        only_fast = " ".join(list((fast - reference).elements())[:8]) or "-"
        only_reference = " ".join(list((reference - fast).elements())[:8]) or "-"
        name = f"{Path(row['file']).parent.name}/{Path(row['file']).name}"
        lines.append(f"| {name} | {score:.4f} | {only_fast} | {only_reference} |")
    record(lines, args.results)
    print(
        json.dumps(
            {
                "benchmark": "parse",
                "files": len(rows),
                "pdfium_files_per_s_per_core": round(per_core["pdfium"], 2),
                "pdfplumber_files_per_s_per_core": round(per_core["pdfplumber"], 3),
                "fast_vs_pdfplumber": round(ratio, 2),
                "token_agreement_mean": round(mean, 5),
                "token_agreement_p5": round(p5, 5),
                "fallback_share": round(fallback_share, 5),
                "different_outcomes": len(different_outcomes),
                "backfill_10m_core_hours": {name: round(hours, 1) for name, hours in backfill.items()},
                "stage_files_per_s": {name: round(len(blobs) / s, 2) for name, s in stage.items()} if stage else None,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
