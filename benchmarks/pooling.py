"""Long CVs: truncation vs pooled chunks, on the held-out split of the shared resumes.

    .venv/bin/python benchmarks/pooling.py [--model all-MiniLM-L6-v2|<folder>] [--results benchmarks/RESULTS.md]

Encodes the title-stripped held-out CVs with each pooling of :mod:`include.matcher.foundations.encoding` and
prints CV -> job accuracy@1 / MRR@10 and the encode time, so the default (``MATCHER_CV_POOLING``)
is chosen by measurement. Appends the table to RESULTS.md with the commit.
"""

from __future__ import annotations

import datetime
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import benchmark_parser, commit, record, shared_data_missing  # noqa: E402
from benchmarks.quality import load_resumes  # noqa: E402
from include.matcher.foundations.encoding import POOLINGS, encode_cvs  # noqa: E402
from include.matcher.foundations.evaluation import category_scores  # noqa: E402
from include.matcher.foundations.jobs import load_job_descriptions  # noqa: E402
from include.matcher.foundations.metrics import ranks_of_truth, retrieval_metrics  # noqa: E402
from include.matcher.foundations.settings import SplitConfig  # noqa: E402
from include.matcher.foundations.text import strip_title  # noqa: E402
from include.matcher.stages.pairs import split_corpus  # noqa: E402


def main() -> int:
    parser = benchmark_parser(__doc__, jobs_file=True)
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    args = parser.parse_args()
    if shared_data_missing(args.resumes):
        return 0
    from include.matcher.foundations.models import load_model

    jobs = load_job_descriptions(args.jobs_file)
    by_split, _ = split_corpus(load_resumes(args.resumes), jobs, SplitConfig())
    test = [{**cv, "text": strip_title(cv["text"])} for cv in by_split["test"]]
    model = load_model(args.model)
    job_texts = [t for c in sorted(jobs) for t in jobs[c]]
    job_categories = [c for c in sorted(jobs) for _ in jobs[c]]
    job_vectors = model.encode(job_texts, normalize_embeddings=True, convert_to_numpy=True)
    lines = [
        f"### pooling: {datetime.date.today()} commit {commit()}, model {args.model}, {len(test)} held-out CVs "
        "(titles stripped)",
        "",
        "| pooling | accuracy@1 | mrr@10 | encode seconds |",
        "| --- | --- | --- | --- |",
    ]
    figures = {}
    for pooling in POOLINGS:
        started = time.monotonic()
        vectors = encode_cvs(model, [cv["text"] for cv in test], pooling)
        seconds = time.monotonic() - started
        scores, categories = category_scores(vectors, job_vectors, job_categories)
        metrics = retrieval_metrics(ranks_of_truth(scores, categories, [cv["category"] for cv in test]))
        lines.append(f"| {pooling} | {metrics['accuracy@1']:.3f} | {metrics['mrr@10']:.3f} | {seconds:.0f} |")
        print(lines[-1], flush=True)
        figures[pooling] = {**metrics, "encode_seconds": round(seconds, 1)}
    record(lines, args.results)
    print(json.dumps({"benchmark": "pooling", "model": args.model, "poolings": figures}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
