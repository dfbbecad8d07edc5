"""The CUDA path in one command: training speed and MFU, the refresh on torch and ONNX, a gate check.

    .venv/bin/python benchmarks/gpu.py [--examples N] [--texts N] [--results benchmarks/RESULTS.md]

Made for the first GPU this project is lent (the bf16, pinned-memory and loader-worker path has not
run on one yet); under 10 minutes on a datacenter GPU. On the same training examples, built from the
shared resumes by the pipeline's pair builder (defaults):
- the bare ``SentenceTransformerTrainer`` (MNR, ``no_duplicates``, bf16 on CUDA) and the ``fine_tune``
  stage as the DAG runs it (S3 checkpoints against a throwaway SeaweedFS): examples/s, achieved
  TFLOP/s of model FLOPs (6 x parameters x tokens + attention), MFU against the device's dense bf16
  peak (its datasheet figure where known, and the measured matmul rate), peak memory;
- the refresh of embeddings on the candidate (``refresh_embeddings``, torch and ONNX): texts/s;
- the gate's broken-model checks (non-finite weights or vectors, zero vectors, collapse) on the
  candidate it trained, scored on the held-out split.
Without CUDA it runs the same at a small size (``--examples 32 --texts 64`` unless given) and says so
in its table and JSON line: figures for checking the script, not for the GPU.
"""

from __future__ import annotations

import datetime
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import benchmark_parser, commit, record, shared_data_missing, throwaway_s3  # noqa: E402
from benchmarks.quality import load_resumes  # noqa: E402
from benchmarks.train import bare_trainer_seconds, bf16_matmul_tflops, training_flops_per_example  # noqa: E402

# Dense bf16 tensor-core peaks from the vendors' datasheets (TFLOP/s, without sparsity).
BF16_PEAK_TFLOPS = {
    "H200": 989.0,
    "H100 SXM": 989.0,
    "H100 PCIe": 756.0,
    "H100 NVL": 835.0,
    "GH200": 989.0,
    "A100": 312.0,
    "L40S": 362.0,
    "L4": 121.0,
    "A10G": 70.0,
    "B200": 2250.0,
}


def datasheet_peak(name: str) -> float | None:
    for model in sorted(BF16_PEAK_TFLOPS, key=len, reverse=True):  # "H100 SXM" before "H100"
        if all(part in name for part in model.split()):
            return BF16_PEAK_TFLOPS[model]
    return None


def peak_memory_gb(cuda: bool) -> float:
    import torch

    if cuda:
        return torch.cuda.max_memory_allocated() / 1024**3
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # KiB on Linux: the process's peak


def reset_peak(cuda: bool) -> None:
    import torch

    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def main() -> int:
    parser = benchmark_parser(__doc__, jobs_file=True)
    parser.add_argument("--examples", type=int, default=0, help="training examples (default: 4000 on CUDA, 32 on CPU)")
    parser.add_argument("--texts", type=int, default=0, help="CV texts to refresh (default: all on CUDA, 64 on CPU)")
    args = parser.parse_args()
    if shared_data_missing(args.resumes):
        return 0
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from include.matcher.foundations.context import RunContext
    from include.matcher.foundations.evaluation import evaluate_model
    from include.matcher.foundations.jobs import load_job_descriptions
    from include.matcher.foundations.models import load_model
    from include.matcher.foundations.settings import GateConfig, PipelineConfig, SplitConfig, TrainingConfig
    from include.matcher.foundations.uris import join_uri
    from include.matcher.stages.embeddings import refresh_embeddings
    from include.matcher.stages.pairs import split_corpus, training_examples
    from include.matcher.stages.training import fine_tune
    from include.matcher.stages.validation import model_problems

    cuda = torch.cuda.is_available()
    device = torch.cuda.get_device_name(0) if cuda else f"CPU ({os.cpu_count()} cores): no CUDA device"
    examples_wanted = args.examples or (4000 if cuda else 32)
    cvs = load_resumes(args.resumes)
    jobs = load_job_descriptions(args.jobs_file)
    by_split, _ = split_corpus(cvs, jobs, SplitConfig())
    config = TrainingConfig(select_best=False)
    train_cvs = sorted(by_split["train"], key=lambda cv: cv["text_hash"])
    examples = training_examples(train_cvs, jobs, config)
    rows = examples.rows[:examples_wanted]
    metadata = examples.metadata[: len(rows)]
    figures: dict = {"benchmark": "gpu", "device": device, "cuda": cuda, "examples": len(rows)}

    reset_peak(cuda)
    bare = bare_trainer_seconds(rows, config)
    bare_memory = peak_memory_gb(cuda)

    texts_wanted = args.texts or (len(cvs) if cuda else 64)
    with throwaway_s3(Path(tempfile.mkdtemp(prefix="matcher-gpu-bench-")) / "s3") as (_, fresh_locations):
        storage, locations = fresh_locations()
        run_uri = locations.run_uri("gpu")
        pairs_uri = join_uri(run_uri, "pairs")
        storage.put_jsonl(join_uri(pairs_uri, "train.jsonl"), rows)
        storage.put_jsonl(join_uri(pairs_uri, "training_metadata.jsonl"), metadata)
        storage.put_jsonl(join_uri(pairs_uri, "validation.jsonl"), by_split["validation"])
        storage.put_json(join_uri(pairs_uri, "jobs.json"), jobs)
        storage.put_json(locations.jobs_file, jobs)
        reset_peak(cuda)
        started = time.perf_counter()
        candidate_uri = fine_tune(pairs_uri, RunContext(run_uri, PipelineConfig(locations=locations), storage))
        stage_wall = time.perf_counter() - started
        stage_memory = peak_memory_gb(cuda)
        stage_stats = json.loads(storage.get_bytes(join_uri(candidate_uri, "training_config.json")))
        stage = stage_stats["train_seconds"]

        corpus = []
        for index, cv in enumerate(sorted(cvs, key=lambda cv: cv["text_hash"])[:texts_wanted]):
            text_uri = join_uri(locations.work, "texts", f"{index}.json")
            storage.put_json(text_uri, {"text": cv["text"]})
            corpus.append({"key": f"cv-{index:05d}", "category": cv["category"], "text_uri": text_uri,
                           "text_hash": cv["text_hash"]})  # fmt: skip
        # The refresh embeds with a registered version, as after a promotion.
        version_uri = join_uri(locations.registry, "models", "v1")
        storage.copy_prefix(candidate_uri, version_uri)
        storage.put_json(join_uri(version_uri, "entry.json"), {"version": "v1"})
        refresh = {}
        for backend in ("torch", "onnx"):
            os.environ["MATCHER_EMBED_BACKEND"] = backend
            corpus_uri = join_uri(locations.work, "runs", backend, "corpus.jsonl")
            storage.put_jsonl(corpus_uri, corpus)
            storage.delete_prefix(locations.embeddings)  # a full refresh each time
            started = time.perf_counter()
            target = refresh_embeddings(version_uri, corpus_uri, locations, storage)
            seconds = time.perf_counter() - started
            parts = storage.get_json(join_uri(target, "_manifest.json"))["parts"]["cvs"]
            encoding = sum(part["encode_seconds"] for part in parts)
            refresh[backend] = {"seconds": seconds, "texts_per_s": len(corpus) / seconds,
                                "encode_texts_per_s": len(corpus) / encoding if encoding else None}  # fmt: skip
        os.environ.pop("MATCHER_EMBED_BACKEND", None)

        candidate = load_model(candidate_uri, storage)
        held_out = evaluate_model(candidate, by_split["test"], jobs, with_title=False)
        problems = model_problems(candidate, held_out.get("health"), GateConfig())

    per_example = training_flops_per_example(rows, config)
    achieved = {
        "bare": per_example * len(rows) * config.epochs / bare / 1e12,
        "stage": per_example * len(rows) * config.epochs / stage / 1e12,
    }
    measured_peak = bf16_matmul_tflops() if cuda else None
    sheet_peak = datasheet_peak(device) if cuda else None
    figures.update(
        {
            "epochs": config.epochs,
            "batch_size": config.batch_size,
            "bare_examples_per_s": round(len(rows) * config.epochs / bare, 2),
            "stage_examples_per_s": round(len(rows) * config.epochs / stage, 2),
            "stage_wall_seconds": round(stage_wall, 1),
            "achieved_tflops": {name: round(value, 3) for name, value in achieved.items()},
            "bf16_peak_tflops_datasheet": sheet_peak,
            "bf16_matmul_tflops_measured": round(measured_peak, 1) if measured_peak else None,
            "mfu": {name: round(value / sheet_peak, 4) for name, value in achieved.items()} if sheet_peak else None,
            "peak_memory_gb": {"bare": round(bare_memory, 2), "stage": round(stage_memory, 2)},
            "refresh_texts": len(corpus),
            "refresh_texts_per_s": {backend: round(row["texts_per_s"], 1) for backend, row in refresh.items()},
            "gate_broken_model_checks": problems or "passed",
            "held_out_mrr@10": round(held_out["metrics"]["mrr@10"], 4),
        }
    )
    where = device if cuda else "CPU, small size: not GPU figures"
    memory = "GPU memory allocated" if cuda else "process max RSS"
    lines = [
        f"### gpu: {datetime.date.today()} commit {commit()}, {where}; {len(rows)} examples x {config.epochs} epoch, "
        f"batch {config.batch_size}",
        "",
        f"| path | examples/s | achieved TFLOP/s | MFU (bf16 peak) | peak {memory}, GB |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, seconds, peak in (
        ("bare SentenceTransformerTrainer", bare, bare_memory),
        ("fine_tune stage", stage, stage_memory),
    ):
        key = "bare" if name.startswith("bare") else "stage"
        mfu = f"{achieved[key] / sheet_peak:.1%} of {sheet_peak:.0f}" if sheet_peak else "n/a"
        lines.append(
            f"| {name} | {len(rows) * config.epochs / seconds:.2f} | {achieved[key]:.3f} | {mfu} | {peak:.2f} |"
        )
    lines += [
        "",
        f"Refresh of {len(corpus)} CV texts + the job texts on the candidate: "
        + ", ".join(
            f"{backend} {row['texts_per_s']:.1f} texts/s"
            + (f" ({row['encode_texts_per_s']:.1f} encoding alone)" if row["encode_texts_per_s"] else "")
            for backend, row in refresh.items()
        )
        + " (ONNX's one-time export of the new version counted in)"
        + (f"; measured bf16 matmul {measured_peak:.0f} TFLOP/s" if measured_peak else "")
        + ".",
        "Gate's broken-model checks on the candidate: "
        + ("passed" if not problems else "FAILED: " + "; ".join(problems))
        + f" (held-out MRR@10 {held_out['metrics']['mrr@10']:.3f}).",
    ]
    record(lines, args.results)
    print(json.dumps(figures))
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
