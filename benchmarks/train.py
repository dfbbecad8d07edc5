"""Training speed: the fine-tune stage vs a bare ``SentenceTransformerTrainer`` run on the same examples.

    .venv/bin/python benchmarks/train.py [--examples 160] [--results benchmarks/RESULTS.md]

On training examples built from the shared resumes by the pipeline's own pair builder (default
settings: ``multiple_negatives``, batch 16, titles stripped), in one run:
- bare: ``SentenceTransformerTrainer`` with ``MultipleNegativesRankingLoss``, sentence-transformers'
  ``no_duplicates`` sampler, nothing saved (what a tutorial would write);
- ``train_model``: the stage's training core (category-distinct batches, bf16 on CUDA), no
  checkpoints and no validation;
- the ``fine_tune`` stage as the DAG runs it, against a throwaway SeaweedFS: pairs read from S3,
  checkpoints mirrored to S3 and scored on the validation split, the best one kept, the candidate
  uploaded.
Examples/s counts training examples over the trainer's own time (``trainer.train``), and the stage row
its whole wall time. On CUDA it also measures the GPU's bf16 matmul rate and reports the share of it
the training reaches (model FLOPs: 6 x parameters x tokens + attention), so it can be rerun on any
CUDA box (issue 5's GPU part). Target (issue 5): none stated; the stage should not be slower than bare.
"""

from __future__ import annotations

import datetime
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import benchmark_parser, commit, record, shared_data_missing, throwaway_s3  # noqa: E402
from benchmarks.quality import load_resumes  # noqa: E402


def bare_trainer_seconds(rows: list[dict], config) -> float:
    """Seconds of ``trainer.train()`` for a plain MNR run on ``rows``."""
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    from include.matcher.foundations.models import load_model
    from include.matcher.stages.training import device_flags

    model = load_model(config.base_model)
    model.max_seq_length = config.max_seq_length
    dataset = Dataset.from_dict({"anchor": [r["anchor"] for r in rows], "positive": [r["positive"] for r in rows]})
    with tempfile.TemporaryDirectory() as scratch:
        args = SentenceTransformerTrainingArguments(
            output_dir=scratch,
            num_train_epochs=config.epochs,
            per_device_train_batch_size=config.batch_size,
            learning_rate=config.learning_rate,
            warmup_steps=config.warmup_ratio,
            batch_sampler="no_duplicates",
            save_strategy="no",
            report_to="none",
            disable_tqdm=True,
            seed=config.seed,
            # A tutorial's run: mixed precision on CUDA, the trainer's default data loader.
            **{flag: value for flag, value in device_flags().items() if flag in ("bf16", "fp16")},
        )
        trainer = SentenceTransformerTrainer(
            model=model, args=args, train_dataset=dataset, loss=MultipleNegativesRankingLoss(model)
        )
        started = time.perf_counter()
        trainer.train()
        return time.perf_counter() - started


def bf16_matmul_tflops(size: int = 8192, repeats: int = 20) -> float:
    """The GPU's measured dense bf16 matmul rate (the ceiling the training share is reported against)."""
    import torch

    a = torch.randn(size, size, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(size, size, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(repeats):
        a @ b
    torch.cuda.synchronize()
    return 2 * size**3 * repeats / (time.perf_counter() - started) / 1e12


def training_flops_per_example(rows: list[dict], config) -> float:
    """Model FLOPs of one training example (forward + backward of both texts), averaged over ``rows``."""
    from include.matcher.foundations.models import load_model

    model = load_model(config.base_model, device="cpu")
    transformer = model[0].auto_model
    hidden, layers = transformer.config.hidden_size, transformer.config.num_hidden_layers
    parameters = sum(p.numel() for name, p in transformer.named_parameters() if "embeddings" not in name)
    total = 0.0
    for row in rows:
        for text in (row["anchor"], row["positive"]):
            tokens = min(
                config.max_seq_length, len(model.tokenizer(text, truncation=False, verbose=False)["input_ids"])
            )
            total += 6 * parameters * tokens + 12 * layers * hidden * tokens**2
    return total / len(rows)


def main() -> int:
    parser = benchmark_parser(__doc__, jobs_file=True)
    parser.add_argument("--examples", type=int, default=160, help="training examples (CPU: ~2 examples/s)")
    args = parser.parse_args()
    if shared_data_missing(args.resumes):
        return 0
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from include.matcher.foundations.context import RunContext
    from include.matcher.foundations.jobs import load_job_descriptions
    from include.matcher.foundations.settings import PipelineConfig, SplitConfig, TrainingConfig
    from include.matcher.foundations.uris import join_uri
    from include.matcher.stages.pairs import split_corpus, training_examples
    from include.matcher.stages.training import fine_tune, train_model

    cvs = load_resumes(args.resumes)
    jobs = load_job_descriptions(args.jobs_file)
    by_split, _ = split_corpus(cvs, jobs, SplitConfig())
    train_cvs = sorted(by_split["train"], key=lambda cv: cv["text_hash"])[: args.examples]
    config = TrainingConfig(select_best=False)
    examples = training_examples(train_cvs, jobs, config)
    rows = []

    bare = bare_trainer_seconds(examples.rows, config)
    rows.append(("bare SentenceTransformerTrainer (MNR, no_duplicates, nothing saved)", bare, bare))

    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        out = train_model(examples.rows, examples.metadata, config, folder)
        wall = time.perf_counter() - started
        core = json.loads((out / "training_config.json").read_text())["train_seconds"]
    rows.append(("train_model (stage core: category-distinct batches; no checkpoints, no validation)", core, wall))

    with throwaway_s3(Path(tempfile.mkdtemp(prefix="matcher-train-bench-")) / "s3") as (_, fresh_locations):
        storage, locations = fresh_locations()
        run_uri = locations.run_uri("bench")
        pairs_uri = join_uri(run_uri, "pairs")
        storage.put_jsonl(join_uri(pairs_uri, "train.jsonl"), examples.rows)
        storage.put_jsonl(join_uri(pairs_uri, "training_metadata.jsonl"), examples.metadata)
        storage.put_jsonl(join_uri(pairs_uri, "validation.jsonl"), by_split["validation"])
        storage.put_json(join_uri(pairs_uri, "jobs.json"), jobs)
        started = time.perf_counter()
        candidate = fine_tune(pairs_uri, RunContext(run_uri, PipelineConfig(locations=locations), storage))
        wall = time.perf_counter() - started
        stage_stats = json.loads(storage.get_bytes(join_uri(candidate, "training_config.json")))
        stage = stage_stats["train_seconds"]
    selection, uploads = stage_stats["selection"] or {}, stage_stats["checkpoint_uploads"] or {}
    scoring = selection.get("seconds", 0.0)
    rows.append(
        (
            f"fine_tune stage as the DAG runs it (S3 checkpoints scored on {len(by_split['validation'])} validation "
            "CVs, best kept)",
            stage,
            wall,
        )
    )

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU, {os.cpu_count()} cores"
    lines = [
        f"### train: {datetime.date.today()} commit {commit()}, {len(examples.rows)} examples x {config.epochs} "
        f"epoch, batch {config.batch_size}, {device}",
        "",
        "| path | trainer seconds | examples/s | vs bare | wall seconds (load, save, S3 included) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, seconds, wall in rows:
        lines.append(
            f"| {name} | {seconds:.1f} | {len(examples.rows) * config.epochs / seconds:.2f} | {bare / seconds:.2f}x "
            f"| {wall:.1f} |"
        )
    if torch.cuda.is_available():
        peak = bf16_matmul_tflops()
        per_example = training_flops_per_example(examples.rows, config)
        achieved = per_example * len(examples.rows) * config.epochs / rows[1][1] / 1e12
        lines += [
            "",
            f"GPU: measured bf16 matmul {peak:.0f} TFLOP/s; train_model reaches {achieved:.2f} TFLOP/s of model "
            f"FLOPs ({achieved / peak:.1%} of it).",
        ]
    lines += [
        "",
        f"Inside the stage's trainer seconds: {selection.get('scorings', 0)} validation scorings "
        f"({scoring:.1f} s, {scoring / stage:.0%}), {uploads.get('count', 0)} checkpoint uploads that "
        f"training waited {uploads.get('waited_seconds', 0.0):.1f} s for. With the scorings' seconds "
        f"subtracted the stage is at "
        f"{bare / (stage - scoring):.2f}x bare.",
    ]
    record(lines, args.results)
    print(
        json.dumps(
            {
                "benchmark": "train",
                "examples": len(examples.rows),
                "epochs": config.epochs,
                "device": device,
                "stage_vs_bare": round(bare / rows[2][1], 3),
                "stage_wall_vs_bare": round(bare / rows[2][2], 3),
                "core_vs_bare": round(bare / rows[1][1], 3),
                "stage_vs_bare_without_scoring": round(bare / (stage - scoring), 3),
                "scorings": selection.get("scorings", 0),
                "scoring_seconds": scoring,
                "upload_wait_seconds": uploads.get("waited_seconds", 0.0),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
