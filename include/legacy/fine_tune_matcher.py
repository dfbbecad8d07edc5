"""The old Django management command, ``fine_tune_matcher``: a labelled folder and a jobs file in, a
fine-tuned model folder out, with ``training_metadata.jsonl`` beside it.

``python -m include.matcher fine-tune --data-root --jobs-file --output`` runs it with the old flags.
It trains in one process on whatever is in the folder, without the pipeline's ledger, registry or
gate; the nightly DAG is the production path.
"""

from __future__ import annotations

import logging
import tempfile

from include.legacy.labelled_folders import load_labelled_cvs
from include.matcher.foundations.jobs import load_job_descriptions
from include.matcher.foundations.settings import SplitConfig, TrainingConfig
from include.matcher.foundations.storage import Storage
from include.matcher.stages.pairs import require_trainable, split_corpus, training_examples

log = logging.getLogger("fine_tune_matcher")


def fine_tune_matcher(data_root: str, jobs_file: str, output: str, config: TrainingConfig) -> str:
    """Fine-tune on ``data_root`` (local or ``s3://``) into ``output`` (local or ``s3://``); returns ``output``."""
    from include.matcher.stages.training import train_model

    store = Storage() if any(str(p).startswith("s3://") for p in (data_root, jobs_file, output)) else None
    cvs, rejects = load_labelled_cvs(data_root, store)
    jobs = load_job_descriptions(jobs_file, store)
    by_split, unknown = split_corpus(cvs, jobs, SplitConfig())
    require_trainable(by_split, len(cvs), unknown)
    examples = training_examples(by_split["train"], jobs, config, store)
    for reject in rejects:
        log.warning("skipped %r: %s", reject["key"], reject["reason"])
    log.info(
        "%d CVs (%s), %d rejected, %d without a job description -> %d examples",
        len(cvs),
        {k: len(v) for k, v in by_split.items()},
        len(rejects),
        len(unknown),
        len(examples.rows),
    )
    if output.startswith("s3://"):
        with tempfile.TemporaryDirectory(prefix="matcher-output-") as local:
            train_model(
                examples.rows, examples.metadata, config, local, store, validation=by_split["validation"], jobs=jobs
            )
            store.upload_dir(local, output)
    else:
        train_model(
            examples.rows, examples.metadata, config, output, store, validation=by_split["validation"], jobs=jobs
        )
    return output
