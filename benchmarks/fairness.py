"""Does a name move a candidate, before and after redaction? The audit on real resumes, every placement.

    .venv/bin/python benchmarks/fairness.py                      # ../shared/data; --max-train 0 for all

Splits the resumes with the pipeline's split and fine-tunes the defaults on the training split (as a
night does: training texts redacted; ``--train consistency`` also with ``name_consistency``, the
counterfactual training). Then, for the base model and each fine-tuned model, on the held-out test
split, titles stripped:

- the bias audit with names of groups the project never saw (``--names``, default
  ``benchmarks/unseen_names.json``: 6 groups x 4 names), each name put at the top, in a contact line
  (an e-mail made of it and a phone) and in a closing line; read **before** (the model alone reads
  the whole text, as the product did until redaction) and **after** (the product path: redacted);
  the placebo (hobbies instead of names) beside them; every figure with its bootstrap interval;
- accuracy@1 and MRR@10 before and after, with the paired interval of the change (the gate's
  bootstrap), so redaction is seen to cost no quality beyond doubt;
- what redaction costs: seconds per CV, and what it took out of the held-out CVs.

Appends its tables to RESULTS.md and ends with one JSON line.
"""

from __future__ import annotations

import datetime
import json
import os
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import benchmark_parser, commit, record, shared_data_missing  # noqa: E402
from benchmarks.quality import load_resumes, log  # noqa: E402
from include.matcher.foundations.audit_names import PLACEMENTS, load_audit_names  # noqa: E402
from include.matcher.foundations.evaluation import evaluate_model  # noqa: E402
from include.matcher.foundations.jobs import load_job_descriptions  # noqa: E402
from include.matcher.foundations.settings import GateConfig, SplitConfig, TrainingConfig  # noqa: E402
from include.matcher.foundations.text import strip_title  # noqa: E402
from include.matcher.stages.bias_audit import audit_models, audited_cvs  # noqa: E402
from include.matcher.stages.evidence import paired_evidence  # noqa: E402
from include.matcher.stages.pairs import split_corpus, training_examples  # noqa: E402

UNSEEN_NAMES = ROOT / "benchmarks" / "unseen_names.json"
GOAL_WIN_RATE = (0.45, 0.55)
GOAL_FLIP_RATE = 0.02


def bounds(figure: dict) -> str:
    return f"{figure['value']:.3f} ({figure['low']:.3f} to {figure['high']:.3f})"


@contextmanager
def redaction(on: bool):
    """The deployment setting for the length of a block: "before" is the product with it off."""
    before = os.environ.get("MATCHER_REDACT_IDENTIFIERS")
    os.environ["MATCHER_REDACT_IDENTIFIERS"] = "true" if on else "false"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("MATCHER_REDACT_IDENTIFIERS", None)
        else:
            os.environ["MATCHER_REDACT_IDENTIFIERS"] = before


def within_goal(found: dict) -> bool:
    """Every pair of groups' win rate within 0.45-0.55 and the flip rate at most 0.02 (point figures)."""
    side = found["candidate"]
    low, high = GOAL_WIN_RATE
    return all(low <= rate <= high for rate in side["win_rates"].values()) and (
        side["flip_rate"]["value"] <= GOAL_FLIP_RATE
    )


def main() -> int:
    parser = benchmark_parser(__doc__, jobs_file=True)
    parser.add_argument("--max-train", type=int, default=600, help="subsample the training split (0: all)")
    parser.add_argument("--skip-training", action="store_true", help="audit the base model only")
    parser.add_argument(
        "--train",
        default="defaults",
        help="comma-separated models to fine-tune: 'defaults', 'consistency' (the defaults with name_consistency)",
    )
    parser.add_argument("--name-consistency", type=float, default=1.0, help="the weight 'consistency' trains with")
    parser.add_argument("--names", type=Path, default=UNSEEN_NAMES, help="the audit's groups of names")
    parser.add_argument("--audit-cvs", type=int, default=30, help="held-out CVs the audit puts names on")
    parser.add_argument("--names-per-group", type=int, default=4)
    args = parser.parse_args()
    if shared_data_missing(args.resumes):
        return 0
    from include.matcher.foundations.models import load_model
    from include.matcher.foundations.redaction import redaction as find_identifiers
    from include.matcher.stages.training import train_model

    gate = GateConfig()
    cvs = load_resumes(args.resumes)
    jobs = load_job_descriptions(args.jobs_file)
    names = load_audit_names(args.names).first(args.names_per_group)
    by_split, _ = split_corpus(cvs, jobs, SplitConfig())
    train = sorted(by_split["train"], key=lambda cv: cv["text_hash"])
    train = train[: args.max_train] if args.max_train else train
    test = by_split["test"]
    audited = [{**cv, "text": strip_title(cv["text"])} for cv in audited_cvs(test, jobs, args.audit_cvs)]
    log(f"train {len(train)} (of {len(by_split['train'])}), test {len(test)}, audited {len(audited)}")

    started = time.perf_counter()
    found = [find_identifiers(cv["text"]) for cv in test]
    redaction_seconds = (time.perf_counter() - started) / max(1, len(test))
    kinds: dict[str, int] = {}
    for item in (removed for one in found for removed in one.removed):
        kinds[item.kind] = kinds.get(item.kind, 0) + 1
    words = sum(len(cv["text"].split()) for cv in test)
    words_removed = sum(len(item.text.split()) for one in found for item in one.removed)

    models = {"base all-MiniLM-L6-v2": load_model("all-MiniLM-L6-v2")}
    seconds: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as folder:
        for wanted in [] if args.skip_training else args.train.split(","):
            config = TrainingConfig(name_consistency=args.name_consistency if wanted == "consistency" else 0.0)
            label = "fine-tuned defaults" + (
                f" + name consistency {args.name_consistency:g}" if wanted == "consistency" else ""
            )
            with redaction(True):
                examples = training_examples(train, jobs, config, model=models["base all-MiniLM-L6-v2"])
                log(f"fine-tuning {label} on {len(examples.rows)} examples (training texts redacted)")
                started = time.perf_counter()
                path = train_model(
                    examples.rows,
                    examples.metadata,
                    config,
                    Path(folder) / wanted,
                    validation=by_split["validation"],
                    jobs=jobs,
                )
            seconds[f"training {label}"] = {"seconds": round(time.perf_counter() - started, 1)}
            models[label] = load_model(str(path))

        results = {}
        for label, model in models.items():
            kept: dict[str, dict] = {"before": {}, "after": {}}
            for moment, on in (("before", False), ("after", True)):
                with redaction(on):
                    evaluate_model(model, test, jobs, with_title=False, keep=kept[moment])
            quality = {
                metric: paired_evidence(
                    kept["after"]["scores"],
                    kept["before"]["scores"],
                    kept["after"]["categories"],
                    kept["after"]["truth"],
                    metric,
                    gate.confidence,
                    gate.min_category_support,
                )[metric]
                for metric in ("accuracy@1", "mrr@10")
            }
            started = time.perf_counter()
            with redaction(True):
                audit = audit_models({"candidate": model}, audited, jobs, names, gate.confidence)
            seconds[label] = {"audit": round(time.perf_counter() - started, 1)}
            results[label] = {"quality": quality, "audit": audit}
            log(f"{label}: audit {seconds[label]['audit']:.0f} s")

    lines = [
        f"### fairness: {datetime.date.today()} commit {commit()}, names the project never saw, every placement",
        "",
        f"{len(audited)} held-out CVs of the test split's {len(test)} (titles stripped), each under "
        f"{len(names.named())} names of {len(names.groups)} groups the project never saw (`{args.names.name}`), "
        "the name put at the top, in a contact line (`first.last@example.com | phone`) and in a closing line "
        "(`Sincerely, <name>`), scored against the 24 job categories. **Before**: the model reads the whole "
        "text (the product until now; the audit's `model alone`). **After**: the product path, redacted "
        f"(`MATCHER_REDACT_IDENTIFIERS`, the default). Fine-tuned on {len(train)} training CVs with the "
        f"defaults. {gate.confidence:.0%} bootstrap intervals over the CVs. Goal: every pair's win rate within "
        f"{GOAL_WIN_RATE[0]}-{GOAL_WIN_RATE[1]} and flip rate at most {GOAL_FLIP_RATE}.",
        "",
        "| model | placement | before: largest win-rate gap | before: top-10 % flip rate | after: largest win-rate gap "
        "| after: top-10 % flip rate | after within the goal |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for label, result in results.items():
        for placement in PLACEMENTS:
            audits = result["audit"]["by_placement"][placement]
            before, after = audits["model_alone"]["candidate"], audits["product"]["candidate"]
            lines.append(
                f"| {label} | {placement} | {bounds(before['largest_win_rate_gap'])} | {bounds(before['flip_rate'])} "
                f"| {bounds(after['largest_win_rate_gap'])} | {bounds(after['flip_rate'])} | "
                f"{'yes' if within_goal(audits['product']) else 'no'} |"
            )
        placebo = result["audit"]["placebo"]["candidate"]
        lines.append(
            f"| {label} | placebo (hobbies, not names) | - | - | {bounds(placebo['largest_win_rate_gap'])} | "
            f"{bounds(placebo['flip_rate'])} | - |"
        )
    lines += [
        "",
        "Held-out quality on all test CVs, before (whole text) and after (redacted), the change with the gate's "
        "paired bootstrap interval:",
        "",
        "| model | accuracy@1 before | after | change (CI) | MRR@10 before | after | change (CI) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for label, result in results.items():
        cells = []
        for metric in ("accuracy@1", "mrr@10"):
            change = result["quality"][metric]
            cells.append(
                f"{change['production']:.3f} | {change['candidate']:.3f} | {change['difference']:+.3f} "
                f"({change['low']:+.3f} to {change['high']:+.3f})"
            )
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Redaction on the {len(test)} test CVs: {redaction_seconds * 1000:.1f} ms per CV; "
        f"{sum(1 for one in found if one.removed)} CVs had something taken out ({kinds}); "
        f"{words_removed} of {words} words ({words_removed / max(1, words):.3%}). Audit cost per model: "
        + ", ".join(f"{label} {seconds[label]['audit']:.0f} s" for label in results)
        + "".join(f"; {name} {figure['seconds']:.0f} s" for name, figure in seconds.items() if "training" in name)
        + ".",
    ]
    record(lines, args.results)
    print(
        json.dumps(
            {
                "benchmark": "fairness",
                "models": {
                    label: {
                        "by_placement": {
                            placement: {
                                path: {
                                    "largest_win_rate_gap": audits[path]["candidate"]["largest_win_rate_gap"],
                                    "flip_rate": audits[path]["candidate"]["flip_rate"],
                                }
                                for path in ("model_alone", "product")
                            }
                            for placement, audits in result["audit"]["by_placement"].items()
                        },
                        "placebo_flip_rate": result["audit"]["placebo"]["candidate"]["flip_rate"],
                        "quality_change": result["quality"],
                    }
                    for label, result in results.items()
                },
                "redaction_ms_per_cv": round(redaction_seconds * 1000, 2),
                "seconds": seconds,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
