"""Dense alone vs dense fused with a lexical score, both directions, on the shared resumes' held-out split.

    .venv/bin/python benchmarks/hybrid.py --model .local/benchmarks/model-defaults   # from quality.py --save-model

The model's scores are the pipeline's own (title-stripped CVs, a category scores the best of its
descriptions). The lexical score is the TF-IDF cosine between a CV and a category's best
description (vectoriser fitted on the training CVs and the descriptions, never on held-out text).
The fusion is ``z(dense) + w * z(lexical)``, each z-normalised over the whole score matrix. ``w`` is
chosen on the validation split, then the test split is scored once, so the test numbers are not
tuned on. Reported for the test split: CV -> job accuracy@1/@3, MRR@10, job -> CV recall@10 and MAP@10,
with the paired bootstrap interval (the gate's, :mod:`include.matcher.stages.evidence`) of fused minus
dense. Appends its table to RESULTS.md and ends with one JSON line.
"""

from __future__ import annotations

import datetime
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import benchmark_parser, commit, record, shared_data_missing  # noqa: E402
from benchmarks.quality import load_resumes, log  # noqa: E402

WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.5, 0.8)
SHOWN = ("accuracy@1", "accuracy@3", "mrr@10", "job_to_cv_recall@10", "job_to_cv_map@10")


def zscore(matrix: np.ndarray) -> np.ndarray:
    return (matrix - matrix.mean()) / (matrix.std() or 1.0)


def lexical_scores(train: list[dict], texts: list[str], jobs: dict[str, list[str]]) -> np.ndarray:
    """(texts x categories) TF-IDF cosine to each category's best description."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    categories = sorted(jobs)
    descriptions = [text for category in categories for text in jobs[category]]
    owners = [category for category in categories for _ in jobs[category]]
    vectorizer = TfidfVectorizer(sublinear_tf=True, min_df=2, ngram_range=(1, 2), max_features=100_000)
    vectorizer.fit([cv["text"] for cv in train] + descriptions)
    similarity = (vectorizer.transform(texts) @ vectorizer.transform(descriptions).T).toarray()
    return np.stack(
        [similarity[:, [i for i, owner in enumerate(owners) if owner == c]].max(axis=1) for c in categories], axis=1
    )


def dense_scores(model, texts: list[str], jobs: dict[str, list[str]]) -> np.ndarray:
    from include.matcher.foundations.evaluation import encoder_scores

    return encoder_scores(model, texts, jobs)[0]


def main() -> int:
    parser = benchmark_parser(__doc__, jobs_file=True)
    parser.add_argument("--model", default="all-MiniLM-L6-v2", help="a model folder or name (default: base)")
    args = parser.parse_args()
    if shared_data_missing(args.resumes):
        return 0

    from include.matcher.foundations.evaluation import evaluate_scores
    from include.matcher.foundations.jobs import load_job_descriptions
    from include.matcher.foundations.models import load_model
    from include.matcher.foundations.settings import SplitConfig
    from include.matcher.foundations.text import strip_title
    from include.matcher.stages.evidence import paired_evidence
    from include.matcher.stages.pairs import split_corpus

    jobs = load_job_descriptions(args.jobs_file)
    categories = sorted(jobs)
    by_split, _ = split_corpus(load_resumes(args.resumes), jobs, SplitConfig())
    model = load_model(args.model)
    scored = {}
    for split in ("validation", "test"):
        cvs = [cv for cv in by_split[split] if cv["category"] in jobs]
        texts = [strip_title(cv["text"]) for cv in cvs]
        log(f"{split}: encoding {len(cvs)} CVs")
        scored[split] = (
            zscore(dense_scores(model, texts, jobs)),
            zscore(lexical_scores(by_split["train"], texts, jobs)),
            [cv["category"] for cv in cvs],
        )

    def metrics(split: str, weight: float) -> dict:
        dense, lexical, truth = scored[split]
        return evaluate_scores(dense + weight * lexical, categories, truth)["metrics"]

    # Chosen on validation: the weight with the best sum of the gate's MRR@10 and the guarded MAP@10.
    on_validation = {w: metrics("validation", w) for w in WEIGHTS}
    best = max(WEIGHTS, key=lambda w: on_validation[w]["mrr@10"] + on_validation[w]["job_to_cv_map@10"])
    dense, lexical, truth = scored["test"]
    test = {w: metrics("test", w) for w in WEIGHTS}
    evidence = paired_evidence(dense + best * lexical, dense, categories, truth, "mrr@10", 0.95, 5)
    lexical_only = evaluate_scores(lexical, categories, truth)["metrics"]

    lines = [
        f"### hybrid: {datetime.date.today()} commit {commit()}, model {args.model}, "
        f"{len(truth)} held-out CVs (titles stripped), weight chosen on {len(scored['validation'][2])} validation CVs",
        "",
        "| scores | " + " | ".join(SHOWN) + " |",
        "| --- |" + " --- |" * len(SHOWN),
        "| TF-IDF cosine alone | " + " | ".join(f"{lexical_only[m]:.3f}" for m in SHOWN) + " |",
    ]
    for weight in WEIGHTS:
        name = (
            "dense alone" if weight == 0 else f"z(dense) + {weight} z(TF-IDF)" + (" (chosen)" if weight == best else "")
        )
        lines.append(f"| {name} | " + " | ".join(f"{test[weight][m]:.3f}" for m in SHOWN) + " |")
    for name in ("mrr@10", "job_to_cv_map@10"):
        change = evidence[name]
        lines.append(
            f"\nFused (w={best}) minus dense, {name}: {change['difference']:+.3f}, "
            f"95% CI {change['low']:+.3f} to {change['high']:+.3f}."
        )
    record(lines, args.results)
    print(
        json.dumps(
            {
                "benchmark": "hybrid",
                "model": args.model,
                "weight": best,
                "dense": test[0.0],
                "fused": test[best],
                "fused_minus_dense": {name: evidence[name] for name in ("mrr@10", "job_to_cv_map@10")},
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
