"""Stage 3, build pairs: CVs + job descriptions -> training examples shaped for the chosen loss.

* A CV's split (train / validation / test) is a function of its text fingerprint alone, so it never
  changes side as the corpus grows and exact duplicates never straddle splits.
* Positives pair a training CV with each description of its own category; negatives pair it with a
  description of another category, ``negative_ratio`` of them per positive. A fractional ratio is
  honoured on average (0.5 = one negative for every other positive).
* Shapes: ``cosine`` -> (sentence1, sentence2, label); ``multiple_negatives`` -> (anchor, positive),
  its negatives being the other in-batch positives; ``triplet`` -> (anchor, positive, negative).
* ``multiple_negatives`` pairs each CV with one description of its category, the category's
  descriptions taken in turn over its CVs: its batches hold one CV per category
  (:mod:`include.matcher.foundations.batching`), which a category with many descriptions could not allow if
  each CV came once per description.
* ``training_metadata.jsonl`` has one row per training example, in the examples' order.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from include.matcher.foundations import layout
from include.matcher.foundations.audit_names import AuditNames, load_audit_names
from include.matcher.foundations.context import RunContext
from include.matcher.foundations.errors import BadInput
from include.matcher.foundations.jobs import load_job_descriptions
from include.matcher.foundations.losses import loss_spec
from include.matcher.foundations.settings import SplitConfig, TrainingConfig
from include.matcher.foundations.text import training_text
from include.matcher.stages.corpus import load_corpus_texts, several_categories
from include.matcher.stages.near_duplicates import near_duplicate_groups

log = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")


def assign_split(text_hash: str, split: SplitConfig) -> str:
    """Deterministic split from the first 32 bits of the text fingerprint."""
    position = int(text_hash[:8], 16) / 0x1_0000_0000
    if position < split.test_fraction:
        return "test"
    if position < split.test_fraction + split.validation_fraction:
        return "validation"
    return "train"


@dataclass
class Examples:
    rows: list[dict]
    metadata: list[dict]


class NegativeQuota:
    """Hands out ``ratio`` negatives per positive on average, carrying the fraction over."""

    def __init__(self, ratio: float):
        self.ratio = ratio
        self.owed = 0.0

    def next(self) -> int:
        self.owed += self.ratio
        count = int(self.owed + 1e-9)
        self.owed -= count
        return count


def build_examples(
    cvs: list[dict],
    jobs: dict[str, list[str]],
    loss: str,
    negative_ratio: float,
    seed: int,
    hard_negatives: dict[str, list[tuple[str, int]]] | None = None,
    strip_titles: bool = TrainingConfig.strip_titles,
    names: AuditNames | None = None,
    consistency_names: AuditNames | None = None,
    reading: Callable[[str], list[str]] | None = None,
) -> Examples:
    """Training examples from CVs (dicts with key, category, text) of the training split.

    With ``hard_negatives`` (see :mod:`include.matcher.stages.hard_negatives`), negatives come from the
    CV's mined list (cycled) instead of at random; ``multiple_negatives`` rows then carry one hard
    ``negative`` each on top of the in-batch ones. With ``strip_titles`` the CV side is
    :func:`training_text` (its first line dropped). With ``names`` (counterfactual augmentation) each
    CV carries a name line, the groups taken in turn and a name drawn within the group. With
    ``consistency_names`` (counterfactual training) each CV carries a name of one group (in turn) and its
    row a ``renamed`` column: the same CV under a name of another group, in the same place (a line at
    the top or a contact line, in turn). With ``reading`` (:func:`cv_reading`), each piece of a CV the
    encoder reads apart (a window, where CVs are served as pooled windows) is an example of its own.
    """
    spec = loss_spec(loss)
    if consistency_names and not spec.in_batch_negatives:
        raise ValueError("name_consistency trains with multiple_negatives only (its ranking is in-batch)")
    if consistency_names and reading:
        raise ValueError("name_consistency reads a CV whole: it cannot train on pooled windows")
    pairs_of_names = list(consistency_names.groups.values()) if consistency_names else []
    rng = random.Random(seed)
    quota = NegativeQuota(negative_ratio)
    categories = sorted(jobs)
    rows: list[dict] = []
    metadata: list[dict] = []
    turns: Counter = Counter()
    naming = random.Random(seed + 1)  # its own stream: augmentation leaves the negatives drawn unchanged
    groups = list(names.groups.values()) if names else []
    for index, cv in enumerate(sorted(cvs, key=lambda c: c["key"])):
        category = cv["category"]
        others = [c for c in categories if c != category]
        mined = list((hard_negatives or {}).get(cv["key"], []))
        cv_text = training_text(cv["text"], strip_titles)
        renamed = None
        if pairs_of_names:
            own = index % len(pairs_of_names)
            other = (own + 1 + naming.randrange(len(pairs_of_names) - 1)) % len(pairs_of_names)
            placement = ("top", "contact")[index % 2]  # a closing line lies past what the model reads
            plain = cv_text
            cv_text = consistency_names.put_on(naming.choice(pairs_of_names[own]), plain, placement)
            renamed = consistency_names.put_on(naming.choice(pairs_of_names[other]), plain, placement)
        elif groups:
            cv_text = names.put_on(naming.choice(groups[index % len(groups)]), cv_text)
        for piece in reading(cv_text) if reading else [cv_text]:
            positives = list(enumerate(jobs[category]))
            if spec.in_batch_negatives:  # one description per CV, the category's descriptions in turn
                positives = [positives[turns[category] % len(positives)]]
                turns[category] += 1
            for job_index, job_text in positives:
                base = {
                    "source_key": cv["key"],
                    "category": category,
                    "split": "train",
                    "job_category": category,
                    "job_index": job_index,
                }
                wanted = spec.negatives_wanted(quota, mining=hard_negatives is not None)
                negatives = _take_hard(mined, wanted) if mined else _sample_negatives(rng, others, jobs, wanted)
                for example in spec.shape(piece, job_text, [(jobs[c][i], c, i) for c, i in negatives]):
                    about = {**base, **example.about}
                    if spec.in_batch_negatives and "negative_category" in about:
                        about["hard"] = bool(mined)
                    rows.append({**example.row, "renamed": renamed} if renamed is not None else example.row)
                    metadata.append(about)

    order = list(range(len(rows)))
    rng.shuffle(order)
    return Examples([rows[i] for i in order], [metadata[i] for i in order])


def cv_reading(
    training: TrainingConfig, pooling: str | None = None, storage=None, model=None
) -> Callable[[str], list[str]] | None:
    """How the encoder will read a CV once served, so training reads it alike: whole (the model keeps
    its first ``max_seq_length`` tokens) under ``truncate``, else cut into the windows that serving
    pools (``pooling``, default ``MATCHER_CV_POOLING``), each window then an example of its own."""
    from include.matcher.foundations.encoding import chunk_text, cv_pooling

    if (pooling or cv_pooling()) == "truncate":
        return None
    if model is not None:
        tokenizer = model.tokenizer
    else:
        from transformers import AutoTokenizer

        from include.matcher.foundations.models import resolve_model

        tokenizer = AutoTokenizer.from_pretrained(resolve_model(training.base_model, storage))
    return lambda text: chunk_text(text, tokenizer, training.max_seq_length)


def training_examples(
    train_cvs: list[dict],
    jobs: dict[str, list[str]],
    training: TrainingConfig,
    storage=None,
    model=None,
    pooling: str | None = None,
) -> Examples:
    """:func:`build_examples` under a :class:`TrainingConfig`, mining hard negatives first when it asks,
    each CV read as it will be served (:func:`cv_reading`).

    Mining uses ``model`` if given, else loads ``training.base_model``.
    """
    hard = None
    if training.hard_negatives:
        from include.matcher.foundations.models import load_model
        from include.matcher.stages.hard_negatives import mine_hard_negatives

        miner = model if model is not None else load_model(training.base_model, storage)
        hard = mine_hard_negatives(
            miner, train_cvs, jobs, training.hard_negatives, training.hard_negative_margin, training.strip_titles
        )
    names = consistency_names = None
    if training.name_consistency > 0:
        consistency_names = load_audit_names().for_training()
    elif training.name_augmentation:
        names = load_audit_names().for_training()
    return build_examples(
        train_cvs,
        jobs,
        training.loss,
        training.negative_ratio,
        training.seed,
        hard,
        training.strip_titles,
        names,
        consistency_names,
        cv_reading(training, pooling, storage, model),
    )


def _take_hard(mined: list[tuple[str, int]], count: int) -> list[tuple[str, int]]:
    """The next ``count`` hard negatives, rotating the list so successive pairs use different ones."""
    taken = []
    for _ in range(min(count, len(mined))):
        taken.append(mined.pop(0))
        mined.append(taken[-1])
    return taken


def _sample_negatives(
    rng: random.Random, others: list[str], jobs: dict[str, list[str]], count: int
) -> list[tuple[str, int]]:
    pool = [(category, index) for category in others for index in range(len(jobs[category]))]
    return rng.sample(pool, min(count, len(pool))) if count else []


def split_corpus(
    cvs: list[dict], jobs: dict[str, list[str]], split: SplitConfig
) -> tuple[dict[str, list[dict]], list[str]]:
    """CVs by split; CVs whose category has no job description are left out and returned by key.

    A group of near-duplicates (:mod:`include.matcher.stages.near_duplicates`) goes to one split, the one
    its smallest text fingerprint hashes to, so no CV has a twin on the other side. A CV moves only
    if a near-twin with a smaller fingerprint arrives later, and then it moves with its twin.
    """
    by_split: dict[str, list[dict]] = {name: [] for name in SPLITS}
    unknown = []
    known = []
    for cv in cvs:
        if cv["category"] not in jobs:
            unknown.append(cv["key"])
        else:
            known.append(cv)
    group_of = (
        near_duplicate_groups(known)
        if "text" in (known[0] if known else {})
        else {cv["key"]: cv["text_hash"] for cv in known}
    )
    ambiguous = set(several_categories(known, group_of))
    for cv in known:
        # One text filed under two categories has no single right answer to be judged on: train only.
        by_split["train" if cv["key"] in ambiguous else assign_split(group_of[cv["key"]], split)].append(cv)
    return by_split, unknown


class UntrainableData(BadInput, ValueError):
    """The corpus cannot train a matcher: what it lacks is in the message."""


def require_trainable(by_split: dict[str, list[dict]], corpus_size: int, unknown: list[str]) -> None:
    """Refuse a training split that would teach the model nothing.

    An empty split trains nothing; a split of one category gives every in-batch negative the anchor's
    own category (``multiple_negatives`` loss 0) and the model no contrast to learn from.
    """
    train = by_split["train"]
    if not train:
        raise UntrainableData(
            f"the training split is empty: the corpus holds {corpus_size} parsed CVs, {len(unknown)} of them in "
            "categories "
            "missing from the jobs file, and the rest fell in the held-out splits; add CVs under <raw "
            "prefix>/<CATEGORY>/"
        )
    categories = sorted({cv["category"] for cv in train})
    if len(categories) < 2:
        raise UntrainableData(
            f"the training split holds CVs of one category only ({categories[0]!r}, {len(train)} CVs): a matcher "
            "learns by "
            f"contrasting categories, so it needs CVs of at least two categories that the jobs file describes"
        )


def build_pairs(corpus_uri: str, context: RunContext) -> str:
    """Task ``train.build_pairs``: write ``<run>/pairs/{train,training_metadata,validation,test}.jsonl`` and
    ``jobs.json``."""
    run_uri, config, storage = context.run_uri, context.config, context.storage
    cvs = load_corpus_texts(corpus_uri, storage)
    jobs = load_job_descriptions(config.locations.jobs_file, storage)
    by_split, unknown = split_corpus(cvs, jobs, config.split)
    require_trainable(by_split, len(cvs), unknown)
    training = config.training
    examples = training_examples(by_split["train"], jobs, training, storage)

    pairs = layout.Run(run_uri).pairs
    storage.put_jsonl(pairs.split("train"), examples.rows)
    storage.put_jsonl(pairs.training_metadata, examples.metadata)
    storage.put_jsonl(pairs.split("train_cvs"), [_held_out_row(cv) for cv in by_split["train"]])  # for baselines
    for name in ("validation", "test"):
        storage.put_jsonl(pairs.split(name), [_held_out_row(cv) for cv in by_split[name]])
    storage.put_json(pairs.jobs, jobs)
    summary = {
        "loss": training.loss,
        "negative_ratio": training.negative_ratio,
        "hard_negatives": training.hard_negatives,
        "examples": len(examples.rows),
        "labels": dict(Counter(str(m.get("label", m.get("role"))) for m in examples.metadata)),
        "cvs_by_split": {name: len(rows) for name, rows in by_split.items()},
        "train_cvs_by_category": dict(sorted(Counter(cv["category"] for cv in by_split["train"]).items())),
        "categories": sorted(jobs),
        "cvs_without_job_description": unknown,
        # Positives for every category they are filed under, and kept out of the held-out splits.
        "cvs_under_several_categories": several_categories([cv for cv in cvs if cv["category"] in jobs]),
        "data_hash": data_hash(cvs, jobs),
    }
    storage.put_json(pairs.summary, summary)
    if unknown:
        log.warning("build_pairs: %d CVs have a category missing from the jobs file", len(unknown))
    if summary["cvs_under_several_categories"]:
        log.warning(
            "build_pairs: %d CVs share their text with a CV of another category: trained on, never held out",
            len(summary["cvs_under_several_categories"]),
        )
    log.info("build_pairs: %s", json.dumps({k: summary[k] for k in ("examples", "labels", "cvs_by_split")}))
    return pairs.uri


def data_hash(cvs: list[dict], jobs: dict[str, list[str]]) -> str:
    """Content hash of what a model is trained and judged on: every CV's label and text, and the jobs."""
    digest = hashlib.sha256()
    for category, text_hash in sorted((cv["category"], cv["text_hash"]) for cv in cvs):
        digest.update(f"{category}\0{text_hash}\n".encode())
    digest.update(json.dumps(jobs, sort_keys=True).encode())
    return digest.hexdigest()


def _held_out_row(cv: dict) -> dict:
    return {"key": cv["key"], "category": cv["category"], "text": cv["text"], "text_hash": cv["text_hash"]}
