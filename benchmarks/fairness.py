"""The bias audit on real resumes: the base model, the defaults fine-tuned, and the defaults with name augmentation.

    .venv/bin/python benchmarks/fairness.py                      # ../shared/data; --max-train 0 for all

Splits the resumes with the pipeline's split, fine-tunes the defaults twice on the training split
(without and with ``name_augmentation``, same seed), and audits each model on the held-out test split
exactly as ``validate`` does (``audit_held_out`` with the gate's defaults: its CVs, names, seed). For
each: the headline figures with their bootstrap intervals, accuracy@1 and MRR@10 with intervals, and
the four-fifths verdict; then the paired change augmentation brings (flip rate, win-rate gap, MRR@10);
and the audit's cost beside validate's own scoring time. Appends its tables to RESULTS.md and ends
with one JSON line.
"""

from __future__ import annotations

import datetime
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import benchmark_parser, commit, record, shared_data_missing  # noqa: E402
from benchmarks.quality import load_resumes, log  # noqa: E402
from include.matcher.foundations.evaluation import evaluate_model  # noqa: E402
from include.matcher.foundations.jobs import load_job_descriptions  # noqa: E402
from include.matcher.foundations.settings import GateConfig, SplitConfig, TrainingConfig  # noqa: E402
from include.matcher.stages.bias_audit import audit_held_out  # noqa: E402
from include.matcher.stages.evidence import paired_evidence  # noqa: E402
from include.matcher.stages.pairs import split_corpus, training_examples  # noqa: E402


def bounds(figure: dict) -> str:
    return f"{figure['value']:.3f} ({figure['low']:.3f} to {figure['high']:.3f})"


def main() -> int:
    parser = benchmark_parser(__doc__, jobs_file=True)
    parser.add_argument("--max-train", type=int, default=600, help="subsample the training split (0: all)")
    parser.add_argument("--skip-training", action="store_true", help="audit the base model only")
    args = parser.parse_args()
    if shared_data_missing(args.resumes):
        return 0
    from include.matcher.foundations.models import load_model
    from include.matcher.stages.training import train_model

    gate = GateConfig()
    cvs = load_resumes(args.resumes)
    jobs = load_job_descriptions(args.jobs_file)
    by_split, _ = split_corpus(cvs, jobs, SplitConfig())
    train = sorted(by_split["train"], key=lambda cv: cv["text_hash"])
    train = train[: args.max_train] if args.max_train else train
    test = by_split["test"]
    log(f"train {len(train)} (of {len(by_split['train'])}), test {len(test)}")

    models = {"base all-MiniLM-L6-v2": load_model("all-MiniLM-L6-v2")}
    with tempfile.TemporaryDirectory() as folder:
        if not args.skip_training:
            for augmented in (False, True):
                config = TrainingConfig(name_augmentation=augmented)
                examples = training_examples(train, jobs, config, model=models["base all-MiniLM-L6-v2"])
                log(f"fine-tuning the defaults (name_augmentation={augmented}) on {len(examples.rows)} examples")
                path = train_model(
                    examples.rows,
                    examples.metadata,
                    config,
                    Path(folder) / str(augmented),
                    validation=by_split["validation"],
                    jobs=jobs,
                )
                models["fine-tuned defaults" + (" + name augmentation" if augmented else "")] = load_model(str(path))

        results, kept, seconds = {}, {}, {}
        for label, model in models.items():
            started = time.perf_counter()
            kept[label] = {}
            metrics = evaluate_model(model, test, jobs, keep=kept[label])["metrics"]
            seconds[label] = {"scoring": time.perf_counter() - started}
            audit = audit_held_out({"candidate": model}, test, jobs, gate)
            seconds[label]["audit"] = audit["seconds"]
            results[label] = {"metrics": metrics, "audit": audit}
            log(f"{label}: audit {audit['seconds']:.0f} s, scoring {seconds[label]['scoring']:.0f} s")

        lines = [
            f"### fairness: {datetime.date.today()} commit {commit()}",
            "",
            f"Bias audit as the gate runs it ({gate.audit_cvs} held-out CVs of the test split's {len(test)}, "
            f"{gate.audit_names_per_group} names per group of the shipped audit-study names, titles stripped, "
            f"{gate.confidence:.0%} bootstrap intervals over the CVs); fine-tuned on {len(train)} training CVs "
            "(the defaults otherwise).",
            "",
            "| model | lowest impact ratio (scoring) | four-fifths | lowest selection impact ratio | flip rate "
            "| largest win-rate gap | name sensitivity | accuracy@1 | MRR@10 |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for label, found in results.items():
            side = found["audit"]["candidate"]
            verdict = ("passes" if side["lowest_impact_ratio"]["value"] >= 0.8 else "fails (point)") + (
                ", below beyond doubt" if side["lowest_impact_ratio"]["high"] < 0.8 else ""
            )
            lines.append(
                f"| {label} | {bounds(side['lowest_impact_ratio'])} | {verdict} | "
                f"{bounds(side['lowest_selection_impact_ratio'])} | {bounds(side['flip_rate'])} | "
                f"{bounds(side['largest_win_rate_gap'])} | {bounds(side['name_sensitivity'])} | "
                f"{found['metrics']['accuracy@1']:.3f} | {found['metrics']['mrr@10']:.3f} |"
            )
        lines += [
            "",
            "Paired win rates (share of (CV, job) pairs the first group's variant outscores the second's):",
            "",
        ]
        for label, found in results.items():
            wins = found["audit"]["candidate"]["win_rates"]
            lines.append(f"- {label}: " + ", ".join(f"{pair} {rate:.3f}" for pair, rate in wins.items()))
        change = {}
        labels = list(results)
        if len(labels) == 3:
            plain, augmented = labels[1], labels[2]
            pair = audit_held_out({"candidate": models[augmented], "production": models[plain]}, test, jobs, gate)
            mrr = paired_evidence(
                kept[augmented]["scores"],
                kept[plain]["scores"],
                kept[augmented]["categories"],
                kept[augmented]["truth"],
                "mrr@10",
                gate.confidence,
                gate.min_category_support,
            )
            accuracy = paired_evidence(
                kept[augmented]["scores"],
                kept[plain]["scores"],
                kept[augmented]["categories"],
                kept[augmented]["truth"],
                "accuracy@1",
                gate.confidence,
                gate.min_category_support,
            )
            change = {
                "flip_rate": pair["flip_rate_increase"],
                "largest_win_rate_gap": pair["largest_win_rate_gap_increase"],
                "mrr@10": mrr["mrr@10"],
                "accuracy@1": accuracy["accuracy@1"],
            }
            lines += [
                "",
                "Augmented minus plain, paired over the same CVs: "
                f"flip rate {bounds(change['flip_rate'])}, largest win-rate gap "
                f"{bounds(change['largest_win_rate_gap'])}, MRR@10 {change['mrr@10']['difference']:+.3f} "
                f"({change['mrr@10']['low']:+.3f} to {change['mrr@10']['high']:+.3f}), accuracy@1 "
                f"{change['accuracy@1']['difference']:+.3f} ({change['accuracy@1']['low']:+.3f} to "
                f"{change['accuracy@1']['high']:+.3f}).",
            ]
        base = labels[0]
        width = results[base]["audit"]["candidate"]["lowest_impact_ratio"]
        lines += [
            "",
            f"Cost per model on this machine: audit {results[base]['audit']['seconds']:.0f} s "
            f"({results[base]['audit']['cvs']} CVs x {results[base]['audit']['names']} names) against "
            f"{seconds[base]['scoring']:.0f} s to score the {len(test)} held-out CVs (validate scores candidate, "
            "production and the base model that way, and runs the audit for two); interval width of the lowest "
            f"impact ratio {width['high'] - width['low']:.3f}.",
        ]
        record(lines, args.results)
    print(
        json.dumps(
            {
                "benchmark": "fairness",
                "models": {
                    label: {
                        "lowest_impact_ratio": found["audit"]["candidate"]["lowest_impact_ratio"],
                        "flip_rate": found["audit"]["candidate"]["flip_rate"],
                        "largest_win_rate_gap": found["audit"]["candidate"]["largest_win_rate_gap"],
                        "accuracy@1": found["metrics"]["accuracy@1"],
                        "mrr@10": found["metrics"]["mrr@10"],
                    }
                    for label, found in results.items()
                },
                "augmentation_change": change,
                "seconds": seconds,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
