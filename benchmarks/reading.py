"""How much of a CV the matcher reads: first 256 tokens, first 512, pooled windows trained as served.

    .venv/bin/python benchmarks/reading.py     # ../shared/data by default; all three readings at full size: ~2.5 h

Each reading is trained the way it is served, on the pipeline's own split and defaults (titles
stripped, redaction on), and scored on the held-out CVs with their title lines stripped:

* ``first 256`` (the default before this benchmark): the model keeps a CV's first 256 tokens;
* ``first 512``: trained and served at ``max_seq_length`` 512 (BERT's position limit);
* ``windows of 256, mean``: every 256-token window of a training CV is an example of its own
  (:func:`~include.matcher.stages.pairs.cv_reading`), one epoch so it costs about what three epochs
  of first windows cost; served as the mean of the windows (``MATCHER_CV_POOLING=mean``).

Beside each model's own serving, the rows a model can be read with at no training cost (the 256
model read at 512, the 512 model over windows). Every row's accuracy@1/@3, MRR@10 and job -> CV
MAP@10 come with the gate's paired bootstrap interval of the difference to ``first 256``
(:func:`~include.matcher.stages.evidence.paired_evidence`).

Costs, measured in turn in one process: training minutes; seconds to encode held-out CVs as the
refresh does (torch in fp32 and bf16, the fused ONNX export and its int8 quantization, for
``first 256`` and for the reading that wins), with each one's agreement with fp32 (the share of each
job's top 10 CVs and of each CV's top 10 categories that stay); and what a night's validation reads,
on a first night and on the next, when production's vectors come from the first night's memo
(:mod:`~include.matcher.foundations.vector_memo`).

    .venv/bin/python benchmarks/reading.py --only "first 256" --only "first 512"   # full size: ~2 h on 2 cores
    .venv/bin/python benchmarks/reading.py --reuse --only "first 256" --only "first 512"   # the kept models: ~30 min
"""

from __future__ import annotations

import datetime
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import benchmark_parser, commit, record, shared_data_missing  # noqa: E402
from benchmarks.quality import load_resumes, log  # noqa: E402
from include.matcher.foundations.jobs import load_job_descriptions  # noqa: E402
from include.matcher.foundations.settings import GateConfig, SplitConfig, TrainingConfig  # noqa: E402
from include.matcher.foundations.text import strip_title  # noqa: E402
from include.matcher.stages.pairs import split_corpus, training_examples  # noqa: E402

COMPARED = ("accuracy@1", "accuracy@3", "mrr@10")
# name: (max_seq_length, pooling, epochs) of the training; serving readings: (max_seq_length, pooling)
TRAININGS = {
    "first 256": (256, "truncate", None, [(256, "truncate"), (512, "truncate")]),
    "first 512": (512, "truncate", None, [(512, "truncate")]),
    "windows of 256, mean": (256, "mean", 1, [(256, "mean"), (256, "truncate")]),
}
REFERENCE = ("first 256", 256, "truncate")
PRIMARY = GateConfig().primary_metric
MODELS = ROOT / ".local" / "benchmarks" / "reading"  # kept, so --reuse times and compares without training


def serve(model, length: int):
    model.max_seq_length = length
    return model


def scored(model, test: list[dict], jobs: dict, length: int, pooling: str) -> dict:
    from include.matcher.foundations.evaluation import evaluate_model

    keep: dict = {}
    started = time.monotonic()
    result = evaluate_model(serve(model, length), test, jobs, pooling=pooling, with_title=False, keep=keep)
    return {**keep, "metrics": result["metrics"], "seconds": time.monotonic() - started}


def top10_agreement(fp32: dict, int8: dict) -> dict:
    """Share of each job description's top 10 CVs, and of each CV's top 10 categories, that int8 keeps."""
    import numpy as np

    def kept(a, b, axis_rows):
        a, b = (a if axis_rows else a.T), (b if axis_rows else b.T)
        top_a, top_b = np.argsort(-a, axis=1)[:, :10], np.argsort(-b, axis=1)[:, :10]
        return float(np.mean([len(set(x) & set(y)) / len(x) for x, y in zip(top_a, top_b, strict=True)]))

    return {
        "job_to_cv_top10": kept(fp32["job_scores"], int8["job_scores"], axis_rows=False),
        "cv_to_job_top10": kept(fp32["scores"], int8["scores"], axis_rows=True),
    }


def encode_seconds(encoder, texts: list[str], pooling: str, repeats: int = 2) -> float:
    """Best of ``repeats`` seconds to encode ``texts`` as the refresh does."""
    from include.matcher.foundations.encoding import encode_cvs

    best = float("inf")
    for _ in range(repeats):
        started = time.monotonic()
        encode_cvs(encoder, texts, pooling)
        best = min(best, time.monotonic() - started)
    return best


def validation_seconds(path: Path, precision: str, length: int, test: list[dict], jobs: dict, pooling: str) -> dict:
    """Seconds of what ``validate`` reads on a first night (candidate and production both read afresh)
    and on the next (a new candidate; production's vectors remembered from the first night's memo).
    Three models of their own weights (the saved one, its last LayerNorm scaled), read in ``precision``."""
    from include.matcher.foundations.evaluation import evaluate_model
    from include.matcher.foundations.models import load_model
    from include.matcher.foundations.vector_memo import VectorMemo
    from include.matcher.stages.bias_audit import audit_held_out

    def model_of_its_own(scale: float):
        import torch

        model = serve(load_model(str(path), precision=precision), length)
        with torch.no_grad():
            model[0].auto_model.encoder.layer[-1].output.LayerNorm.weight.mul_(scale)
        return model

    def night(candidate, production, memo) -> float:
        started = time.monotonic()
        for model in (candidate, production):
            evaluate_model(model, test, jobs, memo=memo)
        audit_held_out({"candidate": candidate, "production": production}, test, jobs, GateConfig(), memo=memo)
        return time.monotonic() - started

    yesterdays, production, todays = (model_of_its_own(scale) for scale in (1.0, 1.001, 1.002))
    os.environ["MATCHER_CV_POOLING"] = pooling
    try:
        memo = VectorMemo()
        first = night(yesterdays, production, memo)
        return {"first": first, "next": night(todays, production, VectorMemo.from_parquet(memo.to_parquet()))}
    finally:
        os.environ.pop("MATCHER_CV_POOLING")


def training_rate(train: list[dict], jobs: dict, length: int, count: int = 64) -> float:
    """Examples per second a one-epoch fine-tune of ``count`` CVs reaches at ``length`` tokens (fp32)."""
    from include.matcher.stages.training import train_model

    config = TrainingConfig(max_seq_length=length, epochs=1, select_best=False)
    examples = training_examples(train[:count], jobs, config, pooling="truncate")
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as folder:
        train_model(examples.rows, examples.metadata, config, folder)
    return len(examples.rows) / (time.monotonic() - started)


def main() -> int:
    parser = benchmark_parser(__doc__, jobs_file=True)
    parser.add_argument("--max-train", type=int, default=0, help="subsample the training split (0: all)")
    parser.add_argument("--max-test", type=int, default=0, help="subsample the held-out split (0: all)")
    parser.add_argument("--only", action="append", choices=list(TRAININGS), help="train only these readings")
    parser.add_argument("--reuse", action="store_true", help="score the models a previous run kept, untrained")
    parser.add_argument("--cost-texts", type=int, default=200, help="held-out CVs timed per encoder")
    parser.add_argument("--validation-cvs", type=int, default=120, help="held-out CVs a timed validation scores")
    parser.add_argument(
        "--cost-only",
        metavar="MODEL:LENGTH:POOLING",
        help="with --reuse: only the costs of `first 256` and this reading (e.g. 'first 512:512:truncate')",
    )
    parser.add_argument(
        "--backends",
        type=lambda value: value.split(","),
        default=["torch bf16", "onnx", "onnx-int8"],
        help="what the costs compare with torch fp32, comma-separated (default: torch bf16,onnx,onnx-int8)",
    )
    args = parser.parse_args()
    if shared_data_missing(args.resumes):
        return 0

    from include.matcher.foundations.models import load_model
    from include.matcher.foundations.onnx_backend import OnnxEncoder, export_onnx
    from include.matcher.stages.evidence import paired_evidence
    from include.matcher.stages.training import train_model

    cvs = load_resumes(args.resumes)
    jobs = load_job_descriptions(args.jobs_file)
    by_split, _ = split_corpus(cvs, jobs, SplitConfig())
    train = sorted(by_split["train"], key=lambda cv: cv["text_hash"])
    test = sorted([cv for cv in by_split["test"] if cv["category"] in jobs], key=lambda cv: cv["text_hash"])
    if args.max_train:
        train = train[: args.max_train]
    if args.max_test:
        test = test[: args.max_test]
    log(f"split: train {len(train)}, validation {len(by_split['validation'])}, test {len(test)}")

    base = load_model("all-MiniLM-L6-v2", precision="fp32")
    rows: dict[tuple[str, int, str], dict] = {}
    cost_only = None
    if args.cost_only:
        name, length, pooling = args.cost_only.split(":")
        cost_only = (name, int(length), pooling)
    for length in () if cost_only else (256, 512):
        rows[("base model", length, "truncate")] = scored(base, test, jobs, length, "truncate")
        log(f"base at {length}: {rows[('base model', length, 'truncate')]['metrics']['accuracy@1']:.3f}")

    trained: dict[str, dict] = {}
    folder = MODELS / f"train-{len(train)}-test-{len(test)}"
    for name, (length, pooling, epochs, readings) in TRAININGS.items():
        if args.only and name not in args.only or cost_only and name not in (REFERENCE[0], cost_only[0]):
            continue
        config = TrainingConfig(max_seq_length=length, **({"epochs": epochs} if epochs else {}))
        os.environ["MATCHER_CV_POOLING"] = pooling  # the best checkpoint is chosen reading as served
        examples = training_examples(train, jobs, config, model=base, pooling=pooling)
        path = folder / name.replace(" ", "-").replace(",", "")
        if args.reuse and (path / "facts.json").exists():
            trained[name] = {**json.loads((path / "facts.json").read_text()), "path": path}
        else:
            log(f"{name}: fine-tuning on {len(examples.rows)} examples, {config.epochs} epochs")
            started = time.monotonic()
            train_model(examples.rows, examples.metadata, config, path, validation=by_split["validation"], jobs=jobs)
            facts = {
                "minutes": (time.monotonic() - started) / 60,
                "examples": len(examples.rows),
                "epochs": config.epochs,
            }
            (path / "facts.json").write_text(json.dumps(facts))
            trained[name] = {**facts, "path": path}
        os.environ.pop("MATCHER_CV_POOLING")
        model = load_model(str(path), precision="fp32")
        for serve_length, serve_pooling in readings:
            if cost_only and (name, serve_length, serve_pooling) not in (REFERENCE, cost_only):
                continue
            rows[(name, serve_length, serve_pooling)] = scored(model, test, jobs, serve_length, serve_pooling)
            log(f"{name} read {serve_pooling} {serve_length}: {rows[(name, serve_length, serve_pooling)]['metrics']}")

    reference = rows.get(REFERENCE)
    truth = reference["truth"] if reference else None
    for row in rows.values():
        if reference is None:
            break
        row["evidence"] = {
            metric: paired_evidence(row["scores"], reference["scores"], row["categories"], truth, metric, 0.95, 10**9)
            for metric in COMPARED
        }

    # The reading that wins: ahead of `first 256` beyond doubt on the gate's primary metric, job -> CV
    # MAP@10 not behind beyond doubt; the best such on the primary metric.
    def beats(row) -> bool:
        evidence = row.get("evidence", {}).get(PRIMARY)
        return bool(evidence) and evidence[PRIMARY]["low"] > 0 and evidence["job_to_cv_map@10"]["high"] >= 0

    candidates = [key for key in rows if key[0] in trained and beats(rows[key])]
    winner = max(candidates, key=lambda key: rows[key]["metrics"][PRIMARY]) if candidates else REFERENCE
    log(f"winner: {winner}")
    if cost_only:
        winner = cost_only

    # Costs, side by side in one process: today's reading and the winner's (or, when today's wins, the
    # first 512's), each on torch in fp32 and bf16 and on the ONNX exports, each with its agreement with fp32.
    texts = [strip_title(cv["text"]) for cv in test[: args.cost_texts]]
    subject = winner if winner != REFERENCE else ("first 512", 512, "truncate")
    costs, agreement, encoders, torch_rows, sources = {}, {}, {}, {}, {}
    for key in dict.fromkeys([REFERENCE, subject]):
        if key[0] not in trained or key not in rows:
            continue
        path, label = trained[key[0]]["path"], f"{key[0]} read {reading_name(key[1], key[2])}"
        torch_model = serve(load_model(str(path), precision="fp32"), key[1])
        started = time.monotonic()
        if {"onnx", "onnx-int8"} & set(args.backends):
            export_onnx(path, quantize=True)
        export_seconds = time.monotonic() - started
        encoders[f"{label}, torch fp32"], torch_rows[f"{label}, torch fp32"] = (torch_model, key[2]), key
        sources[f"{label}, torch fp32"] = (path, "fp32", key[1])
        if key != REFERENCE:  # today's validation, and the new reading's with and without bf16 hardware
            sources[f"{label}, torch bf16"] = (path, "bf16", key[1])
        for backend in args.backends:
            if backend == "torch bf16":
                onnx_encoder = serve(load_model(str(path), precision="bf16"), key[1])
            else:
                onnx_encoder = OnnxEncoder(path, backend)
                onnx_encoder.max_seq_length = key[1]
            encoders[f"{label}, {backend}"] = (onnx_encoder, key[2])
            onnx_row = scored(onnx_encoder, test, jobs, key[1], key[2])
            agreement[f"{label}, {backend}"] = {
                **top10_agreement(
                    with_job_scores(rows[key], torch_model, jobs), with_job_scores(onnx_row, onnx_encoder, jobs)
                ),
                "accuracy@1": onnx_row["metrics"]["accuracy@1"],
                "job_to_cv_map@10": onnx_row["metrics"]["job_to_cv_map@10"],
                "torch accuracy@1": rows[key]["metrics"]["accuracy@1"],
                "torch job_to_cv_map@10": rows[key]["metrics"]["job_to_cv_map@10"],
                "export_seconds": export_seconds,
            }
    for encoder, pooling in encoders.values():
        encode_seconds(encoder, texts[:8], pooling, repeats=1)  # warm up
    for label, (encoder, pooling) in encoders.items():
        costs[label] = encode_seconds(encoder, texts, pooling)
        log(f"cost {label}: {costs[label]:.1f} s for {len(texts)} CVs")
    # A night's validation as `validate` does it (torch): candidate and production on the held-out CVs,
    # titles stripped and kept, and the bias audit of both.
    rates = {length: training_rate(train, jobs, length) for length in (256, 512)} if costs else {}
    validation_costs = {}
    for label, (_, pooling) in encoders.items():
        if label in sources:
            validation_costs[label] = validation_seconds(*sources[label], test[: args.validation_cvs], jobs, pooling)
            log(f"validation {label}: {validation_costs[label]}")

    lines = [
        f"### reading length{': costs' if cost_only else ''}: {datetime.date.today()} commit {commit()}",
        "",
        f"{len(cvs)} resumes parsed; train {len(train)} CVs, validation {len(by_split['validation'])} (best "
        f"checkpoint), held-out {len(test)} with titles stripped; defaults otherwise (multiple_negatives, "
        "batch 16, lr 5e-5, redaction on). Differences to `first 256` read at 256 with the gate's paired "
        "bootstrap 95% intervals over the held-out CVs.",
        "",
        "| model | read | accuracy@1 | accuracy@3 | MRR@10 | job -> CV MAP@10 | encode s / 100 CVs |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for (name, length, pooling), row in rows.items():
        evidence = row.get("evidence", {})
        cells = []
        for metric in COMPARED:
            cells.append(cell(row["metrics"][metric], evidence.get(metric, {}).get(metric)))
        cells.append(cell(row["metrics"]["job_to_cv_map@10"], evidence.get("accuracy@1", {}).get("job_to_cv_map@10")))
        reading = reading_name(length, pooling)
        per_hundred = 100 * row["seconds"] / len(test)
        lines.append(f"| {name} | {reading} | " + " | ".join(cells) + f" | {per_hundred:.1f} |")
    lines += ["", "| training | examples | epochs | minutes |", "| --- | --- | --- | --- |"]
    for name, facts in trained.items():
        lines.append(f"| {name} | {facts['examples']} | {facts['epochs']} | {facts['minutes']:.1f} |")
    if costs:
        lines += [
            "",
            f"Refresh cost: {len(texts)} held-out CVs encoded as the refresh does (best of 2, in turn, one process, "
            f"{os.cpu_count()} cores); validation s: what `validate` reads for candidate and production on "
            f"{args.validation_cvs} held-out CVs (with and without titles, the bias audit), on torch: a first "
            "night, all read afresh / the next night, production's vectors from the first night's memo (a new "
            "candidate read); bf16 and the ONNX exports' agreement over all "
            f"{len(test)} held-out CVs (against the same model read in fp32): "
            "the share of each job description's top 10 CVs, and of each CV's top 10 categories, that stay.",
            "",
            "| encoder | seconds | CVs/s | vs first 256 on torch fp32 | job -> CV top-10 kept | CV -> job top-10 kept "
            "| accuracy@1 | MAP@10 | validation s |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        first = next(iter(costs.values()))
        for label, seconds in costs.items():
            kept = agreement.get(label)
            quality = (
                f"{kept['job_to_cv_top10']:.3f} | {kept['cv_to_job_top10']:.3f} | {kept['accuracy@1']:.3f} "
                f"| {kept['job_to_cv_map@10']:.3f}"
                if kept
                else f"1 | 1 | {rows[torch_rows[label]]['metrics']['accuracy@1']:.3f} "
                f"| {rows[torch_rows[label]]['metrics']['job_to_cv_map@10']:.3f}"
            )
            validation = (
                f"{validation_costs[label]['first']:.0f} / {validation_costs[label]['next']:.0f}"
                if label in validation_costs
                else "-"
            )
            lines.append(
                f"| {label} | {seconds:.1f} | {len(texts) / seconds:.1f} | {seconds / first:.2f}x | {quality} "
                f"| {validation} |"
            )
    if rates:
        lines += [
            "",
            "Training rate, one epoch of 64 CVs in fp32 on this machine, measured in turn: "
            + ", ".join(f"{length} tokens {rate:.2f} examples/s" for length, rate in rates.items())
            + f" ({rates[256] / rates[512]:.2f}x the time per example at 512; windows of 256 train at the 256 "
            "rate, one example a window).",
        ]
    lines += [
        "",
        f"Winner (ahead on {PRIMARY} beyond doubt, MAP@10 not behind beyond doubt): "
        f"{winner[0]} read {winner[2]} {winner[1]}.",
    ]
    record(lines, args.results)
    print(
        json.dumps(
            {
                "benchmark": "reading",
                "winner": list(winner),
                "rows": {
                    " / ".join(map(str, key)): {
                        **{metric: round(row["metrics"][metric], 4) for metric in (*COMPARED, "job_to_cv_map@10")},
                        "intervals": {
                            metric: [row["evidence"][metric][metric]["low"], row["evidence"][metric][metric]["high"]]
                            for metric in COMPARED
                        }
                        if "evidence" in row
                        else None,
                    }
                    for key, row in rows.items()
                },
                "training_minutes": {name: round(facts["minutes"], 1) for name, facts in trained.items()},
                "encode_seconds": {label: round(seconds, 1) for label, seconds in costs.items()},
                "validation_seconds": {
                    label: {night: round(seconds) for night, seconds in nights.items()}
                    for label, nights in validation_costs.items()
                },
                "training_examples_per_second": {length: round(rate, 2) for length, rate in rates.items()},
                "agreement_with_fp32": agreement,
            }
        )
    )
    return 0


def with_job_scores(row: dict, encoder, jobs: dict) -> dict:
    """``row`` with its (CV x description) scores, for the agreement of two encoders."""
    job_texts = [text for category in sorted(jobs) for text in jobs[category]]
    job_vectors = encoder.encode(job_texts, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
    return {**row, "job_scores": row["cv_vectors"] @ job_vectors.T}


def reading_name(length: int, pooling: str) -> str:
    return f"first {length}" if pooling == "truncate" else f"{pooling} of {length}-token windows"


def cell(value: float, evidence: dict | None) -> str:
    if not evidence or evidence["difference"] == 0 and evidence["low"] == evidence["high"] == 0:
        return f"{value:.3f}"
    return f"{value:.3f} ({evidence['difference']:+.3f} [{evidence['low']:+.3f}, {evidence['high']:+.3f}])"


if __name__ == "__main__":
    sys.exit(main())
