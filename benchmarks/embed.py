"""Embedding speed: the refresh stage vs bare ``SentenceTransformer.encode``; ONNX vs torch.

    .venv/bin/python benchmarks/embed.py [--limit N] [--backends torch,onnx,onnx-int8] [--repeats 1]
                                         [--results benchmarks/RESULTS.md]

On the same CV texts (the shared resumes, parsed once and cached), in one run:
- bare torch: load ``SentenceTransformer`` from local disk, then ``encode(texts)`` with its defaults
  (and, for reference, ``encode`` alone on the loaded model);
- the stage: ``refresh_embeddings`` (plan, embed_shard, publish) against a throwaway SeaweedFS,
  S3 reads and parquet writes included, with each backend;
- bare ONNX Runtime fp32 and int8 (load ``OnnxEncoder``, ``encode``);
- quality: held-out accuracy@1 / MRR@10 (titles stripped) with each backend, to show what int8 costs.
With ``--repeats N`` the bare torch run and each stage run are repeated, interleaved, and the fastest
of each is reported: on a shared machine whose speed drifts over minutes, one run of each path
measures the drift as much as the paths.
Targets (issue 5): stage >= 1.0x bare torch; ONNX option >= 1.5x bare torch within 0.5 points of accuracy@1.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import benchmark_parser, commit, record, shared_data_missing, throwaway_s3  # noqa: E402
from benchmarks.quality import load_resumes  # noqa: E402


def timed(function):
    started = time.perf_counter()
    result = function()
    return result, time.perf_counter() - started


def main() -> int:
    parser = benchmark_parser(__doc__, jobs_file=True)
    parser.add_argument("--limit", type=int, default=0, help="CV texts to embed (0: all, as a nightly refresh does)")
    parser.add_argument("--backends", default="torch,onnx,onnx-int8", help="stage backends to run, comma-separated")
    parser.add_argument("--repeats", type=int, default=1, help="interleaved runs of each path; the fastest is kept")
    args = parser.parse_args()
    backends = [b for b in args.backends.split(",") if b]
    if shared_data_missing(args.resumes):
        return 0
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from include.matcher.foundations.evaluation import evaluate_model
    from include.matcher.foundations.jobs import load_job_descriptions
    from include.matcher.foundations.models import base_model_path
    from include.matcher.foundations.onnx_backend import OnnxEncoder, export_onnx
    from include.matcher.foundations.settings import SplitConfig
    from include.matcher.foundations.uris import join_uri
    from include.matcher.stages.embeddings import refresh_embeddings
    from include.matcher.stages.pairs import split_corpus

    cvs = load_resumes(args.resumes)
    jobs = load_job_descriptions(args.jobs_file)
    ordered = sorted(cvs, key=lambda cv: cv["text_hash"])
    cv_texts = [cv["text"] for cv in (ordered[: args.limit] if args.limit else ordered)]
    # The stage embeds the job descriptions too: the bare loops get the same texts.
    texts = cv_texts + [text for category in sorted(jobs) for text in jobs[category]]
    rows, qualities = [], {}

    # Bare loops as a script would run them: load the model from local disk, encode, done. The stage
    # also starts cold (model from S3, texts from S3, parquet out), so both columns count the load.
    from sentence_transformers import SentenceTransformer

    def bare_torch_run():
        model = SentenceTransformer(str(base_model_path()))
        return model, model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)

    work = Path(tempfile.mkdtemp(prefix="matcher-embed-bench-"))
    model_dir = work / "model"
    shutil.copytree(base_model_path(), model_dir)
    onnx = [backend for backend in backends if backend != "torch"]
    if onnx:
        export_onnx(model_dir, quantize=True)

    bare_runs, stage_runs = [], {backend: [] for backend in backends}
    with throwaway_s3(work / "s3") as (_, fresh_locations):
        storage, locations = fresh_locations()
        storage.put_json(locations.jobs_file, jobs)
        corpus = []
        for index, text in enumerate(cv_texts):
            text_uri = join_uri(locations.work, "texts", f"{index}.json")
            storage.put_json(text_uri, {"text": text})
            corpus.append({"key": f"cv-{index:05d}", "category": "X", "text_uri": text_uri, "text_hash": f"{index}"})
        version_uri = join_uri(locations.registry, "models", "v1")
        storage.upload_dir(model_dir, version_uri)
        storage.put_json(join_uri(version_uri, "entry.json"), {"version": "v1"})
        for repeat in range(args.repeats):
            (model, _), seconds = timed(bare_torch_run)
            bare_runs.append(seconds)
            if repeat == 0:
                _, warm = timed(
                    lambda model=model: model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
                )
            for backend in backends:
                os.environ["MATCHER_EMBED_BACKEND"] = backend
                # cold: each run downloads its model, as a night's first embed_shard does
                os.environ["MATCHER_MODEL_CACHE"] = str(work / f"cache-{backend}-{repeat}")
                corpus_uri = join_uri(locations.work, "runs", f"{backend}-{repeat}", "corpus.jsonl")
                storage.put_jsonl(corpus_uri, corpus)
                # A full refresh each time: with the last run's snapshot in place the stage would
                # (rightly) reuse its vectors and embed nothing.
                storage.delete_prefix(locations.embeddings)
                target, seconds = timed(
                    lambda corpus_uri=corpus_uri: refresh_embeddings(version_uri, corpus_uri, locations, storage)
                )
                parts = storage.get_json(join_uri(target, "_manifest.json"))["parts"]["cvs"]
                stage_runs[backend].append((seconds, sum(part["encode_seconds"] for part in parts)))
    os.environ.pop("MATCHER_EMBED_BACKEND", None)

    bare_torch = min(bare_runs)
    rows.append(("bare SentenceTransformer: load + encode (torch)", bare_torch, None))
    rows.append(("bare SentenceTransformer.encode, model already loaded (torch)", warm, warm))
    for backend in onnx:
        _, seconds = timed(lambda backend=backend: OnnxEncoder(model_dir, backend).encode(texts, batch_size=32))
        rows.append((f"bare OnnxEncoder: load + encode ({backend})", seconds, None))
    for backend, runs in stage_runs.items():
        seconds, encoding = min(runs)
        rows.append((f"refresh_embeddings stage ({backend}; model and texts from S3, parquet out)", seconds, encoding))

    test = split_corpus(cvs, jobs, SplitConfig())[0]["test"]
    qualities["torch"] = evaluate_model(model, test, jobs, with_title=False)["metrics"]
    for backend in onnx:
        qualities[backend] = evaluate_model(OnnxEncoder(model_dir, backend), test, jobs, with_title=False)["metrics"]
    shutil.rmtree(work, ignore_errors=True)

    lines = [
        f"### embed: {datetime.date.today()} commit {commit()}, {len(cv_texts)} CV texts + "
        f"{len(texts) - len(cv_texts)} job texts, {os.cpu_count()} cores"
        + (f", fastest of {args.repeats} interleaved runs of bare torch and each stage" if args.repeats > 1 else ""),
        "",
        "| path | seconds | texts/s | vs bare torch (load + encode) | CV encoding alone, s |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, seconds, encoding in rows:
        encoding_cell = f"{encoding:.1f}" if encoding is not None else ""
        lines.append(
            f"| {name} | {seconds:.1f} | {len(texts) / seconds:.1f} | {bare_torch / seconds:.2f}x | {encoding_cell} |"
        )
    lines += [
        "",
        f"Held-out quality, base model, {len(test)} test CVs, titles stripped:",
        "",
        "| backend | accuracy@1 | mrr@10 |",
        "| --- | --- | --- |",
    ]
    for backend, metrics in qualities.items():
        lines.append(f"| {backend} | {metrics['accuracy@1']:.3f} | {metrics['mrr@10']:.3f} |")
    record(lines, args.results)
    stage = {name.split("(")[1].split(";")[0]: seconds for name, seconds, _ in rows if name.startswith("refresh")}
    print(
        json.dumps(
            {
                "benchmark": "embed",
                "texts": len(texts),
                "bare_torch_seconds": round(bare_torch, 1),
                "repeats": args.repeats,
                "bare_torch_runs": [round(seconds, 1) for seconds in bare_runs],
                "stage_runs": {backend: [round(run[0], 1) for run in runs] for backend, runs in stage_runs.items()},
                "stage_vs_bare": {backend: round(bare_torch / seconds, 3) for backend, seconds in stage.items()},
                "quality": qualities,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
