"""Matching quality on real resumes: fine-tuned bi-encoder vs the base model vs TF-IDF + logistic regression.

    .venv/bin/python benchmarks/quality.py --loss multiple_negatives            # ../shared/data by default

Splits the corpus with the pipeline's own content-hash split, trains on the training split (title
lines stripped unless --no-strip-titles), and scores the held-out test split twice: with each resume's
first line (its job title, which usually names the category) stripped (primary) and kept (secondary).
CV -> job: accuracy@1/@3, MRR@10, NDCG@10 (a category scores the best of its descriptions).
Job -> CV: Recall@10 and MAP@10 over the held-out CVs.
Prints a table and appends it to benchmarks/RESULTS.md with the commit.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import benchmark_parser, commit, record, shared_data_missing  # noqa: E402
from include.matcher.cli import add_setting_flags  # noqa: E402
from include.matcher.foundations.evaluation import evaluate_model, evaluate_tfidf_baseline  # noqa: E402
from include.matcher.foundations.isolation import Document, IsolatedParser  # noqa: E402
from include.matcher.foundations.jobs import load_job_descriptions  # noqa: E402
from include.matcher.foundations.metrics import METRICS  # noqa: E402
from include.matcher.foundations.settings import SplitConfig, TrainingConfig  # noqa: E402
from include.matcher.foundations.text import text_fingerprint  # noqa: E402
from include.matcher.stages.pairs import split_corpus, training_examples  # noqa: E402

CACHE = ROOT / ".local" / "benchmarks" / "parsed-resumes.jsonl"


def load_resumes(root: Path, pdf_extractor: str | None = None) -> list[dict]:
    """Parsed resumes, cached in .local/ by file content and extractor so a rerun skips the parsing
    (``pdf_extractor``: ``MATCHER_PDF_EXTRACTOR`` unless given)."""
    from include.matcher.foundations.documents import parser_of, recorded_parser
    from include.matcher.foundations.settings import ParseLimits, parse_limits_from_env

    limits = ParseLimits(pdf_extractor=pdf_extractor) if pdf_extractor else parse_limits_from_env()
    parser = parser_of("cv.pdf", limits)
    files = sorted(root.glob("*/*.pdf"))
    cached = {}
    if CACHE.exists():
        for row in map(json.loads, CACHE.read_text().splitlines()):
            cached[(row["sha256"], recorded_parser(row, "cv.pdf"))] = row
    digests = {f"{path.parent.name}/{path.name}": hashlib.sha256(path.read_bytes()).hexdigest() for path in files}
    jobs = [
        Document(key, path.read_bytes(), path.name)
        for key, path in zip(digests, files, strict=True)
        if (digests[key], parser) not in cached
    ]
    log(f"{len(files)} resumes, {len(files) - len(jobs)} from the cache, parsing {len(jobs)} ({parser})")
    with IsolatedParser(limits=limits) as pool:
        for key, result in pool.map(jobs):
            row = {"sha256": digests[key], "parser": parser, "text": getattr(result, "text", None)}
            cached[(digests[key], parser)] = row
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    CACHE.write_text("".join(json.dumps(row) + "\n" for row in cached.values()))
    cvs = []
    for key, digest in digests.items():
        text = cached[(digest, parser)]["text"]
        if text:
            cvs.append({"key": key, "category": key.split("/")[0], "text": text, "text_hash": text_fingerprint(text)})
    return cvs


def log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def main() -> int:
    parser = benchmark_parser(__doc__, jobs_file=True)
    add_setting_flags(
        parser, TrainingConfig
    )  # the pipeline's own flags: --loss, --epochs, --strip-titles/--no-strip-titles, ...
    parser.add_argument("--max-train", type=int, default=0, help="subsample the training split (0: all)")
    parser.add_argument(
        "--save-model", type=Path, help="keep the fine-tuned model in this folder (for benchmarks/hybrid.py)"
    )
    parser.add_argument(
        "--compare-extractors",
        action="store_true",
        help="train and score on pdfplumber's texts and on pdfium's, side by side with bootstrap intervals",
    )
    args = parser.parse_args()
    if shared_data_missing(args.resumes):
        return 0
    if args.compare_extractors:
        return compare_extractors(args)

    from include.matcher.foundations.models import load_model
    from include.matcher.stages.training import train_model

    timings = {}
    started = time.monotonic()
    cvs = load_resumes(args.resumes)
    jobs = load_job_descriptions(args.jobs_file)
    by_split, _ = split_corpus(cvs, jobs, SplitConfig())
    train = by_split["train"]
    if args.max_train:
        train = sorted(train, key=lambda cv: cv["text_hash"])[: args.max_train]
    test = by_split["test"]
    timings["parse"] = time.monotonic() - started

    log(f"split: train {len(train)}, validation {len(by_split['validation'])}, test {len(test)}")
    rows = {}
    started = time.monotonic()
    rows["tf-idf + logistic regression"] = evaluate_tfidf_baseline(train, test, jobs)
    timings["tfidf"] = time.monotonic() - started
    started = time.monotonic()
    base = load_model("all-MiniLM-L6-v2")
    rows["base all-MiniLM-L6-v2 (zero-shot)"] = evaluate_model(base, test, jobs)
    timings["base"] = time.monotonic() - started

    config = TrainingConfig.from_mapping(vars(args))
    examples = training_examples(train, jobs, config, model=base)
    log(f"baselines done; fine-tuning on {len(examples.rows)} examples")
    started, cpu_started = time.monotonic(), time.process_time()
    with tempfile.TemporaryDirectory() as folder:
        tuned_path = train_model(
            examples.rows, examples.metadata, config, folder, validation=by_split["validation"], jobs=jobs
        )
        stats = json.loads((tuned_path / "training_config.json").read_text())
        tuned = load_model(str(tuned_path))
        if args.save_model:
            import shutil

            shutil.copytree(tuned_path, args.save_model, dirs_exist_ok=True)
    timings["fine-tune"] = time.monotonic() - started
    cpu_seconds = time.process_time() - cpu_started  # this process's threads; data-loader workers aside
    label = (
        f"fine-tuned ({config.loss}, {config.epochs} ep, lr {config.learning_rate:g}, bs {config.batch_size}"
        + (f", {config.hard_negatives} hard neg" if config.hard_negatives else "")
        + (f", cached mb {config.cached_mini_batch}" if config.cached_mini_batch else "")
        + (", trained without titles" if config.strip_titles else ", trained with titles")
        + (f", best {stats.get('best_checkpoint')}" if stats.get("best_checkpoint") else ", last")
        + ")"
    )
    rows[label] = evaluate_model(tuned, test, jobs)

    lines = [
        f"### quality: {datetime.date.today()} commit {commit()}",
        "",
        f"{len(cvs)} resumes parsed; split train {len(by_split['train'])} (used {len(train)}), validation "
        f"{len(by_split['validation'])}, test {len(test)}; "
        f"{len(examples.rows)} training examples, {stats.get('examples_per_second')} examples/s on "
        f"{stats.get('device')}; seconds: "
        + ", ".join(f"{k} {v:.0f}" for k, v in timings.items())
        + f"; fine-tune CPU minutes {cpu_seconds / 60:.1f}",
        "",
        "| model | " + " | ".join(f"{n} (no title)" for n in METRICS) + " | accuracy@1 (with title) |",
        "| --- |" + " --- |" * (len(METRICS) + 1),
    ]
    for name, result in rows.items():
        primary, secondary = result["metrics"], result["with_title"]["metrics"]
        lines.append(
            f"| {name} | " + " | ".join(f"{primary[n]:.3f}" for n in METRICS) + f" | {secondary['accuracy@1']:.3f} |"
        )
    tfidf, zero_shot, tuned_metrics = (result["metrics"] for result in rows.values())
    lines += [
        "",
        f"Targets (title-stripped): accuracy@1 >= TF-IDF ({tfidf['accuracy@1']:.3f}): "
        f"{'met' if tuned_metrics['accuracy@1'] >= tfidf['accuracy@1'] else 'NOT met'}; "
        f">= zero-shot + 0.20 ({zero_shot['accuracy@1'] + 0.2:.3f}): "
        f"{'met' if tuned_metrics['accuracy@1'] >= zero_shot['accuracy@1'] + 0.2 else 'NOT met'}; "
        "MRR@10 ahead of both: "
        f"{'met' if tuned_metrics['mrr@10'] > max(tfidf['mrr@10'], zero_shot['mrr@10']) else 'NOT met'}.",
    ]
    record(lines, args.results)
    print(
        json.dumps(
            {
                "benchmark": "quality",
                "cpu_minutes_fine_tune": round(cpu_seconds / 60, 1),
                "seconds": {k: round(v) for k, v in timings.items()},
                "models": {name: result["metrics"] for name, result in rows.items()},
            }
        )
    )
    return 0


def bootstrap_interval(values, resamples: int = 2000, confidence: float = 0.95) -> tuple[float, float]:
    """Interval of the mean of per-CV values over CV resamples (fixed seed: reruns agree)."""
    import numpy as np

    values = np.asarray(values, dtype=np.float64)
    draws = np.random.default_rng(0).integers(0, len(values), size=(resamples, len(values)))
    means = values[draws].mean(axis=1)
    tail = (1 - confidence) / 2
    return float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail))


def compare_extractors(args) -> int:
    """The defaults trained and scored on each PDF extractor's texts: pdfplumber (the texts before
    issue 23) and pdfium; each metric with its bootstrap interval over the held-out CVs."""
    from include.matcher.foundations.metrics import PER_CV_METRICS, per_cv_values, ranks_of_truth
    from include.matcher.foundations.models import load_model
    from include.matcher.stages.training import train_model

    config = TrainingConfig.from_mapping(vars(args))
    jobs = load_job_descriptions(args.jobs_file)
    columns, started = {}, time.monotonic()
    for extractor in ("pdfplumber", "pdfium"):
        cvs = load_resumes(args.resumes, extractor)
        by_split, _ = split_corpus(cvs, jobs, SplitConfig())
        train = by_split["train"]
        if args.max_train:
            train = sorted(train, key=lambda cv: cv["text_hash"])[: args.max_train]
        base = load_model("all-MiniLM-L6-v2")
        examples = training_examples(train, jobs, config, model=base)
        log(f"{extractor}: fine-tuning on {len(examples.rows)} examples from {len(train)} CVs")
        with tempfile.TemporaryDirectory() as folder:
            tuned = load_model(
                str(
                    train_model(
                        examples.rows, examples.metadata, config, folder, validation=by_split["validation"], jobs=jobs
                    )
                )
            )
        keep: dict = {}
        result = evaluate_model(tuned, by_split["test"], jobs, with_title=False, keep=keep)
        ranks = ranks_of_truth(keep["scores"], keep["categories"], keep["truth"])
        columns[extractor] = {
            "metrics": result["metrics"],
            "intervals": {metric: bootstrap_interval(per_cv_values(ranks, metric)) for metric in PER_CV_METRICS},
            "train": len(train),
            "test": {cv["key"] for cv in by_split["test"]},
            "examples": len(examples.rows),
        }
    today, fast = columns["pdfplumber"], columns["pdfium"]
    within = {m: today["intervals"][m][0] <= fast["metrics"][m] <= today["intervals"][m][1] for m in PER_CV_METRICS}
    lines = [
        f"### quality by PDF extractor: {datetime.date.today()} commit {commit()}",
        "",
        f"Defaults ({config.loss}, {config.epochs} ep, lr {config.learning_rate:g}, bs {config.batch_size}) trained "
        f"on {today['train']} / {fast['train']} training CVs"
        + (f" (subsampled: --max-train {args.max_train})" if args.max_train else "")
        + f", scored title-stripped on {len(today['test'])} / {len(fast['test'])} held-out CVs "
        f"({len(today['test'] & fast['test'])} in both splits); 95 % bootstrap intervals over the held-out CVs; "
        f"{time.monotonic() - started:.0f} s.",
        "",
        "| metric | pdfplumber texts (before) | pdfium texts (now) | pdfium within pdfplumber's interval |",
        "| --- | --- | --- | --- |",
    ]
    for metric in PER_CV_METRICS:
        cells = []
        for column in (today, fast):
            low, high = column["intervals"][metric]
            cells.append(f"{column['metrics'][metric]:.3f} [{low:.3f}, {high:.3f}]")
        lines.append(f"| {metric} | {cells[0]} | {cells[1]} | {'yes' if within[metric] else 'NO'} |")
    record(lines, args.results)
    print(
        json.dumps(
            {
                "benchmark": "quality_by_extractor",
                "max_train": args.max_train,
                "metrics": {name: column["metrics"] for name, column in columns.items()},
                "intervals": {name: column["intervals"] for name, column in columns.items()},
                "within_interval": within,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
