"""Where everything lives on S3: the one module that spells the pipeline's key names.

Under the work URI::

    runs/<run>/manifest.json                 what ingest found (written once per run)
    runs/<run>/parse/shards/<i>-of-<n>/      items.json, outcomes.jsonl, stats.json
    runs/<run>/parse/{parsed,rejects}.jsonl  every file in exactly one of them; summary.json
    runs/<run>/corpus.jsonl                  the corpus snapshot the later stages read
    runs/<run>/pairs/                        training examples and held-out splits (CV text)
    runs/<run>/checkpoints/                  the latest training checkpoint, while training
    runs/<run>/candidate/                    the trained model, its card and validation report
    runs/<run>/timings/<task>.json           seconds each task worked
    texts/<sha256>.json                      parsed text by content hash (CV text)
    state/ledger.json, state/last_trained.json
    operations/<label>/corpus.jsonl          corpus snapshots made by operator actions

The registry (``models/<version>/``, ``production.json``) and the embeddings
(``<version>/<snapshot>/``, ``current.json``) have their own roots. CV text is found only under
``texts/`` and ``runs/<run>/pairs/``.
"""

from __future__ import annotations

from dataclasses import dataclass

from include.matcher.foundations.uris import join_uri

# -- the work area -------------------------------------------------------------------------------


def runs(work_uri: str) -> str:
    return join_uri(work_uri, "runs")


def ledger(work_uri: str) -> str:
    return join_uri(work_uri, "state", "ledger.json")


def erasure_key(work_uri: str) -> str:
    return join_uri(work_uri, "state", "erasure_key.json")


def erased_training(work_uri: str) -> str:
    return join_uri(work_uri, "state", "erased_training.json")


def search_log(work_uri: str) -> str:
    """``<work>/audit/matches/<yyyy-mm-dd>/``: the search log, a folder a day."""
    return join_uri(work_uri, "audit", "matches")


def search_log_day(work_uri: str, day: str) -> str:
    return join_uri(search_log(work_uri), day)


def search_log_batch(work_uri: str, day: str, name: str) -> str:
    """One batch of a day's search records, written by one searching process."""
    return join_uri(search_log_day(work_uri, day), name)


def search_log_compacted(day_uri: str, token: str) -> str:
    """A settled day's batches merged into one object."""
    return join_uri(day_uri, f"compacted-{token}.jsonl")


def recent_erasures(work_uri: str) -> str:
    return join_uri(work_uri, "state", "recent_erasures.json")


def erasure_requests(work_uri: str) -> str:
    return join_uri(work_uri, "state", "erasure-requests")


def erasure_request(work_uri: str, request_id: str) -> str:
    return join_uri(erasure_requests(work_uri), f"{request_id}.json")


# What an erasure request's URI looks like, wherever the work area is (the erasure DAG's param).
ERASURE_REQUEST_PATTERN = r"^s3://\S+/state/erasure-requests/[0-9a-f]{32}\.json$"


def erasure_receipts(work_uri: str) -> str:
    return join_uri(work_uri, "audit", "erasures")


def erasure_receipt(work_uri: str, at: str, receipt_id: str) -> str:
    return join_uri(erasure_receipts(work_uri), f"{at[:19]}-{receipt_id}.json")


def last_trained(work_uri: str) -> str:
    return join_uri(work_uri, "state", "last_trained.json")


def vector_memo_pointer(work_uri: str) -> str:
    """Names the newest night's vector memo, the one the next validation starts from."""
    return join_uri(work_uri, "state", "vector_memo.json")


def texts(work_uri: str) -> str:
    """The parsed-text cache, one object per content hash (CV text)."""
    return join_uri(work_uri, "texts")


def text_cache(work_uri: str, digest: str) -> str:
    return join_uri(texts(work_uri), f"{digest}.json")


def operations_corpus(work_uri: str, label: str) -> str:
    return join_uri(work_uri, "operations", label, "corpus.jsonl")


def shard_name(index: int, count: int) -> str:
    return f"{index + 1:04d}-of-{count:04d}"


@dataclass(frozen=True)
class Run:
    """The files of one run, ``<work>/runs/<run>/``."""

    uri: str

    @staticmethod
    def of_manifest(uri: str) -> Run | None:
        """The run whose manifest ``uri`` is (listing the runs root finds one per run), else None."""
        return Run(uri.rsplit("/", 1)[0]) if uri.endswith("/manifest.json") else None

    @staticmethod
    def of_vector_memo(uri: str) -> Run | None:
        """The run a vector memo (``validation/vector_memo.parquet``) belongs to, else None."""
        suffix = "/validation/vector_memo.parquet"
        return Run(uri.removesuffix(suffix)) if uri.endswith(suffix) else None

    @staticmethod
    def of_parse_outcomes(uri: str) -> Run | None:
        """The run a parse shard's outcomes (``parse/shards/<i>-of-<n>/outcomes.jsonl``) belong to, else None."""
        if not uri.endswith("/outcomes.jsonl") or "/parse/shards/" not in uri:
            return None
        return Run(uri.split("/parse/shards/", 1)[0])

    @property
    def name(self) -> str:
        return self.uri.rstrip("/").rsplit("/", 1)[-1]

    @property
    def manifest(self) -> str:
        return join_uri(self.uri, "manifest.json")

    def parse_shard(self, index: int, count: int) -> ParseShard:
        return ParseShard(join_uri(self.uri, "parse", "shards", shard_name(index, count)))

    @property
    def parsed(self) -> str:
        return join_uri(self.uri, "parse", "parsed.jsonl")

    @property
    def rejects(self) -> str:
        return join_uri(self.uri, "parse", "rejects.jsonl")

    @property
    def parse_summary(self) -> str:
        return join_uri(self.uri, "parse", "summary.json")

    @property
    def corpus(self) -> str:
        return join_uri(self.uri, "corpus.jsonl")

    @property
    def pairs(self) -> Pairs:
        return Pairs(join_uri(self.uri, "pairs"))

    @property
    def checkpoints(self) -> str:
        return join_uri(self.uri, "checkpoints")

    @property
    def candidate(self) -> Model:
        return Model(join_uri(self.uri, "candidate"))

    @property
    def held_out_vectors(self) -> str:
        """Candidate's and production's vectors of the held-out CVs (keys and categories, no text)."""
        return join_uri(self.uri, "validation", "held_out_vectors.parquet")

    @property
    def vector_memo(self) -> str:
        """The vectors validation read this night, by CV key and text hash (no text): the next night's
        memo (:mod:`~include.matcher.foundations.vector_memo`)."""
        return join_uri(self.uri, "validation", "vector_memo.parquet")

    @property
    def personal_parts(self) -> list[tuple[str, bool]]:
        """What of the run holds CV text or vectors, as (URI, whether it is a folder): what retention
        deletes from an old run, its manifest, reports, metrics and model kept."""
        return [
            (self.pairs.uri, True),
            (self.checkpoints, True),
            (self.held_out_vectors, False),
            (self.vector_memo, False),
            (self.candidate.training_metadata, False),
        ]

    @property
    def timings(self) -> str:
        return join_uri(self.uri, "timings")

    def timing(self, task: str) -> str:
        return join_uri(self.uri, "timings", f"{task}.json")


@dataclass(frozen=True)
class ParseShard:
    """One parse shard's folder: its items, their outcomes and its cache statistics."""

    uri: str

    @classmethod
    def of(cls, items_uri: str) -> ParseShard:
        return cls(items_uri.rsplit("/", 1)[0])

    @property
    def items(self) -> str:
        return join_uri(self.uri, "items.json")

    @property
    def outcomes(self) -> str:
        return join_uri(self.uri, "outcomes.jsonl")

    @property
    def stats(self) -> str:
        return join_uri(self.uri, "stats.json")


# One row per training example, beside the examples (pairs/) and beside the model trained on them.
TRAINING_METADATA = "training_metadata.jsonl"


def is_training_metadata(uri: str) -> bool:
    return uri.endswith("/" + TRAINING_METADATA)


def is_training_examples(uri: str) -> bool:
    """``pairs/train.jsonl``: the training examples, row for row with the metadata beside them."""
    return uri.endswith("/train.jsonl")


@dataclass(frozen=True)
class Pairs:
    """``build_pairs``'s output folder: training examples and the held-out splits."""

    uri: str

    def split(self, name: str) -> str:
        """``train`` (training examples), ``train_cvs``, ``validation`` or ``test`` (CVs)."""
        return join_uri(self.uri, f"{name}.jsonl")

    @property
    def training_metadata(self) -> str:
        return join_uri(self.uri, TRAINING_METADATA)

    @property
    def jobs(self) -> str:
        return join_uri(self.uri, "jobs.json")

    @property
    def summary(self) -> str:
        return join_uri(self.uri, "summary.json")


@dataclass(frozen=True)
class Model:
    """A model folder: a run's candidate or a registry version."""

    uri: str

    @property
    def training_metadata(self) -> str:
        return join_uri(self.uri, TRAINING_METADATA)

    @property
    def validation_report(self) -> str:
        return join_uri(self.uri, "validation_report.json")

    @property
    def validation_report_html(self) -> str:
        return join_uri(self.uri, "validation_report.html")

    @property
    def card(self) -> str:
        return join_uri(self.uri, "README.md")

    @property
    def training_config(self) -> str:
        return join_uri(self.uri, "training_config.json")

    @property
    def entry(self) -> str:
        """What the registry says of a promoted version (registry versions only)."""
        return join_uri(self.uri, "entry.json")

    @staticmethod
    def is_entry(uri: str) -> bool:
        return uri.endswith("/entry.json")

    @property
    def claim(self) -> str:
        """Which run writes this registry version, taken once with a conditional write (registry versions only)."""
        return join_uri(self.uri, "_claim.json")

    def onnx(self, file_name: str) -> str:
        return join_uri(self.uri, "onnx", file_name)


# Of a model folder, what is not the model a version pins: what validate writes beside a candidate
# (report, card), what differs between two trainings of the same weights (training_config.json
# holds their timings), the registry's own records, and the ONNX export a refresh adds.
NOT_MODEL_FILES = frozenset(
    {
        "validation_report.json",
        "validation_report.html",
        "README.md",
        "training_config.json",
        "entry.json",
        "_claim.json",
        "onnx",
    }
)
# The JSON files of a SentenceTransformer folder: its configuration and vocabulary, never a CV.
MODEL_CONFIGURATION_FILES = frozenset(
    {
        "config.json",
        "config_sentence_transformers.json",
        "modules.json",
        "sentence_bert_config.json",
        "special_tokens_map.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "trainer_state.json",
        "training_config.json",
    }
)


def checkpoint(checkpoints_uri: str, name: str) -> str:
    return join_uri(checkpoints_uri, name)


def latest_checkpoint(checkpoints_uri: str) -> str:
    return join_uri(checkpoints_uri, "latest.json")


# -- the registry --------------------------------------------------------------------------------


def production_pointer(registry_uri: str) -> str:
    return join_uri(registry_uri, "production.json")


def rollbacks(registry_uri: str) -> str:
    """One record per rollback (``<stamp>.json``: from, to, at), so a page can say which version was rolled back."""
    return join_uri(registry_uri, "rollbacks")


def rollback_record(registry_uri: str, stamp: str) -> str:
    return join_uri(rollbacks(registry_uri), f"{stamp}.json")


def models(registry_uri: str) -> str:
    return join_uri(registry_uri, "models")


def version(registry_uri: str, name: str) -> Model:
    return Model(join_uri(registry_uri, "models", name))


# -- the embeddings ------------------------------------------------------------------------------


def current_embeddings(embeddings_uri: str) -> str:
    return join_uri(embeddings_uri, "current.json")


@dataclass(frozen=True)
class Snapshot:
    """``<embeddings>/<version>/<corpus run>/``: one model version's vectors of one corpus snapshot."""

    uri: str

    @classmethod
    def of(cls, embeddings_uri: str, version_name: str, corpus_uri: str, inputs_fingerprint: str = "") -> Snapshot:
        """The snapshot of ``corpus_uri``'s CVs (and the job texts) that ``inputs_fingerprint`` names:
        new inputs get a new folder, so a publish never writes into the one readers follow."""
        name = corpus_uri.rstrip("/").rsplit("/", 2)[-2]
        return cls(
            join_uri(embeddings_uri, version_name, f"{name}-{inputs_fingerprint[:12]}" if inputs_fingerprint else name)
        )

    @classmethod
    def of_part(cls, part_uri: str) -> Snapshot:
        """The snapshot a CV part (:meth:`cv_part`) belongs to."""
        return cls(part_uri.rsplit("/cvs/", 1)[0])

    @classmethod
    def holding(cls, embeddings_uri: str, object_uri: str) -> Snapshot | None:
        """The snapshot folder an object under the embeddings root lies in (None for ``current.json``
        and anything else beside the folders)."""
        parts = object_uri[len(embeddings_uri.rstrip("/")) + 1 :].split("/")
        return cls(join_uri(embeddings_uri, parts[0], parts[1])) if len(parts) >= 3 else None

    @staticmethod
    def is_cv_part(uri: str) -> bool:
        return "/cvs/" in uri

    def shard(self, index: int, count: int) -> str:
        return join_uri(self.uri, "shards", f"{shard_name(index, count)}.json")

    def cv_part(self, index: int, count: int) -> str:
        return join_uri(self.uri, "cvs", f"part-{shard_name(index, count)}.parquet")

    @staticmethod
    def part_stats(part_uri: str) -> str:
        return part_uri.removesuffix(".parquet") + ".json"

    @property
    def jobs(self) -> str:
        return join_uri(self.uri, "jobs.parquet")

    @property
    def manifest(self) -> str:
        return join_uri(self.uri, "_manifest.json")

    @property
    def cv_index(self) -> str:
        return join_uri(self.uri, "cvs.index.faiss")

    @property
    def cv_index_rows(self) -> str:
        """The indexed rows' id, category and source, in the index's row order."""
        return join_uri(self.uri, "cvs.index.parquet")
