"""Matching quality on real resumes: fine-tuned bi-encoder vs the base model vs TF-IDF + logistic regression.

    .venv/bin/python benchmarks/quality.py --loss multiple_negatives            # ../shared/data by default

Splits the corpus with the pipeline's own content-hash split, trains on the training split (titles
included), and scores the held-out test split twice: with each resume's first line (its job title,
which usually names the category) stripped (primary) and kept (secondary). CV -> job: accuracy@1/@3,
MRR@10, NDCG@10 (a category scores the best of its descriptions). Job -> CV: Recall@10 and MAP@10
over the held-out CVs. Prints a table and appends it to benchmarks/RESULTS.md with the commit.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from include.matcher.evaluation import category_scores, ranks_of_truth, retrieval_metrics  # noqa: E402
from include.matcher.isolation import IsolatedParser, Job  # noqa: E402
from include.matcher.jobs import load_job_descriptions  # noqa: E402
from include.matcher.pairs import build_examples, split_corpus  # noqa: E402
from include.matcher.settings import SplitConfig, TrainingConfig  # noqa: E402
from include.matcher.text import strip_title, text_fingerprint  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"


CACHE = ROOT / ".local" / "benchmarks" / "parsed-resumes.jsonl"


def load_resumes(root: Path) -> list[dict]:
    """Parsed resumes, cached in .local/ by file content so a rerun skips the slow PDF parsing."""
    files = sorted(root.glob("*/*.pdf"))
    cached = {row["sha256"]: row for row in map(json.loads, CACHE.read_text().splitlines())} if CACHE.exists() else {}
    digests = {f"{path.parent.name}/{path.name}": hashlib.sha256(path.read_bytes()).hexdigest() for path in files}
    jobs = [Job(key, path.read_bytes(), path.name) for key, path in zip(digests, files) if digests[key] not in cached]
    log(f"{len(files)} resumes, {len(files) - len(jobs)} from the cache, parsing {len(jobs)}")
    with IsolatedParser() as pool:
        for key, result in pool.map(jobs):
            cached[digests[key]] = {"sha256": digests[key], "text": getattr(result, "text", None)}
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    CACHE.write_text("".join(json.dumps(row) + "\n" for row in cached.values()))
    cvs = []
    for key, digest in digests.items():
        text = cached[digest]["text"]
        if text:
            cvs.append({"key": key, "category": key.split("/")[0], "text": text, "text_hash": text_fingerprint(text)})
    return cvs


def log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def job_to_cv(scores: np.ndarray, categories: list[str], truth: list[str], k: int = 10) -> dict[str, float]:
    """Recall@k and MAP@k of held-out CVs for each category's query, averaged over categories."""
    recalls, average_precisions = [], []
    truth = np.asarray(truth)
    for column, category in enumerate(categories):
        relevant = truth == category
        if not relevant.any():
            continue
        top = np.argsort(-scores[:, column], kind="stable")[:k]
        hits = relevant[top]
        recalls.append(hits.sum() / relevant.sum())
        precisions = np.cumsum(hits) / (np.arange(len(top)) + 1)
        average_precisions.append((precisions * hits).sum() / min(k, relevant.sum()))
    return {"job->cv recall@10": float(np.mean(recalls)), "job->cv map@10": float(np.mean(average_precisions))}


def score_encoder(model, cvs: list[dict], jobs: dict[str, list[str]]) -> dict[str, float]:
    job_texts = [t for c in sorted(jobs) for t in jobs[c]]
    job_categories = [c for c in sorted(jobs) for _ in jobs[c]]
    job_vectors = model.encode(job_texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
    cv_vectors = model.encode([cv["text"] for cv in cvs], batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
    scores, categories = category_scores(cv_vectors, job_vectors, job_categories)
    return summarise(scores, categories, [cv["category"] for cv in cvs])


def summarise(scores: np.ndarray, categories: list[str], truth: list[str]) -> dict[str, float]:
    metrics = retrieval_metrics(ranks_of_truth(scores, categories, truth))
    metrics.pop("count")
    return {**metrics, **job_to_cv(scores, categories, truth)}


def score_tfidf(train: list[dict], cvs: list[dict], jobs: dict[str, list[str]]) -> dict[str, float]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizer = TfidfVectorizer(sublinear_tf=True, min_df=2, ngram_range=(1, 2), max_features=100_000)
    features = vectorizer.fit_transform([cv["text"] for cv in train])
    classifier = LogisticRegression(max_iter=2000, C=10.0).fit(features, [cv["category"] for cv in train])
    probabilities = classifier.predict_proba(vectorizer.transform([cv["text"] for cv in cvs]))
    categories = sorted(jobs)
    columns = [list(classifier.classes_).index(c) if c in classifier.classes_ else None for c in categories]
    scores = np.stack([probabilities[:, i] if i is not None else np.zeros(len(cvs)) for i in columns], axis=1)
    return summarise(scores, categories, [cv["category"] for cv in cvs])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--resumes", type=Path, default=SHARED / "resumes")
    parser.add_argument("--jobs-file", type=Path, default=SHARED / "job_descriptions.json")
    parser.add_argument("--loss", default=TrainingConfig.loss, choices=["cosine", "multiple_negatives", "triplet"])
    parser.add_argument("--epochs", type=int, default=TrainingConfig.epochs)
    parser.add_argument("--batch-size", type=int, default=TrainingConfig.batch_size)
    parser.add_argument("--learning-rate", type=float, default=TrainingConfig.learning_rate)
    parser.add_argument("--negative-ratio", type=float, default=TrainingConfig.negative_ratio)
    parser.add_argument("--max-train", type=int, default=0, help="subsample the training split (0: all)")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "RESULTS.md")
    args = parser.parse_args()
    if not args.resumes.is_dir():
        print(f"no resumes at {args.resumes}: nothing to benchmark", file=sys.stderr)
        return 0

    from include.matcher.models import load_model
    from include.matcher.training import train_model

    timings = {}
    started = time.monotonic()
    cvs = load_resumes(args.resumes)
    jobs = load_job_descriptions(args.jobs_file)
    by_split, _ = split_corpus(cvs, jobs, SplitConfig())
    train = by_split["train"]
    if args.max_train:
        train = sorted(train, key=lambda cv: cv["text_hash"])[: args.max_train]
    test = by_split["test"]
    stripped = [{**cv, "text": strip_title(cv["text"])} for cv in test]
    timings["parse"] = time.monotonic() - started

    log(f"split: train {len(train)}, test {len(test)}")
    rows = {}
    started = time.monotonic()
    rows["tf-idf + logistic regression"] = (score_tfidf(train, stripped, jobs), score_tfidf(train, test, jobs))
    timings["tfidf"] = time.monotonic() - started
    started = time.monotonic()
    base = load_model("all-MiniLM-L6-v2")
    rows["base all-MiniLM-L6-v2 (zero-shot)"] = (score_encoder(base, stripped, jobs), score_encoder(base, test, jobs))
    timings["base"] = time.monotonic() - started

    config = TrainingConfig(loss=args.loss, epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate, negative_ratio=args.negative_ratio)
    examples = build_examples(train, jobs, config.loss, config.negative_ratio, config.seed)
    log(f"baselines done; fine-tuning on {len(examples.rows)} examples")
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as folder:
        tuned = load_model(str(train_model(examples.rows, examples.metadata, config, folder)))
    timings["fine-tune"] = time.monotonic() - started
    rows[f"fine-tuned ({args.loss}, {args.epochs} ep, lr {args.learning_rate:g}, bs {args.batch_size})"] = (score_encoder(tuned, stripped, jobs), score_encoder(tuned, test, jobs))

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip() or "unknown"
    names = ["accuracy@1", "accuracy@3", "mrr@10", "ndcg@10", "job->cv recall@10", "job->cv map@10"]
    lines = [
        f"### quality: {datetime.date.today()} commit {commit}",
        "",
        f"{len(cvs)} resumes parsed; split train {len(by_split['train'])} (used {len(train)}), validation {len(by_split['validation'])}, test {len(test)}; "
        f"{len(examples.rows)} training examples; seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()),
        "",
        "| model | " + " | ".join(f"{n} (no title)" for n in names) + " | accuracy@1 (with title) |",
        "| --- |" + " --- |" * (len(names) + 1),
    ]
    for name, (primary, secondary) in rows.items():
        lines.append(f"| {name} | " + " | ".join(f"{primary[n]:.3f}" for n in names) + f" | {secondary['accuracy@1']:.3f} |")
    table = "\n".join(lines) + "\n"
    print(table)
    with open(args.results, "a") as handle:
        handle.write("\n" + table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
