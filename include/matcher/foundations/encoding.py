"""Turning a CV into one vector: its identifiers taken out, then truncation or pooled chunks.

The model reads ``max_seq_length`` tokens (the training setting, 512 by default; saved with the
model, so every loader reads the same length) and a typical resume is several times longer.
``truncate`` embeds the beginning only; ``mean`` and ``max`` cut the text into windows of that many
tokens, embed every window and pool them (then re-normalise). Redaction comes first, so no window
holds a name. Evaluation, validation, serving and the embedding refresh all encode CVs through
:func:`encode_cvs`, so the choice (``MATCHER_CV_POOLING``) is the same everywhere, and training
reads CVs alike (:func:`~include.matcher.stages.pairs.cv_reading`: a window, an example); job
descriptions are short and always encoded whole.
"""

from __future__ import annotations

import re

import numpy as np

from include.matcher.foundations.settings import deployment_setting

POOLINGS = ("truncate", "mean", "max")
DEFAULT_POOLING = "truncate"
MAX_CHUNKS = 8  # a 10-page CV costs at most 8 windows; the tail of very long documents is noise
# The most words any encoding reads of a CV: every chunk of the longest window the settings allow.
# Stages downstream of parse cut texts to this, so a long document costs no more than a long CV.
MOST_WORDS_READ = MAX_CHUNKS * 512


def cv_pooling() -> str:
    pooling = deployment_setting("MATCHER_CV_POOLING")
    if pooling not in POOLINGS:
        raise ValueError(f"MATCHER_CV_POOLING must be one of {POOLINGS}, not {pooling!r}")
    return pooling


_WORD = re.compile(r"\S+")


def window_prefix(text: str, tokens: int) -> str:
    """The start of ``text`` that holds at least its first ``tokens`` tokens: the text up to its
    ``tokens``-th word with a letter or digit in it.

    Truncation keeps only the first ``max_seq_length`` tokens, but the tokenizer still reads the whole
    text first: on CV-length texts that is ~5% of a refresh. A word with a letter or digit always
    yields at least one WordPiece token (the tokenizer never drops such characters), so the cut
    keeps every token the model would read, and the embedding is unchanged.
    """
    counted = 0
    for word in _WORD.finditer(text):
        if any(character.isalnum() for character in word.group()):
            counted += 1
            if counted >= tokens:
                return text[: word.end()]
    return text


def chunk_text(text: str, tokenizer, window: int, max_chunks: int = MAX_CHUNKS) -> list[str]:
    """Consecutive windows of ``window`` tokens (special tokens left room for), as text."""
    ids = tokenizer(text, add_special_tokens=False, truncation=False, verbose=False)["input_ids"]
    size = max(8, window - 2)
    chunks = [tokenizer.decode(ids[start : start + size]) for start in range(0, len(ids), size)][:max_chunks]
    return chunks or [text]


def encode_cvs(
    model,
    texts: list[str],
    pooling: str | None = None,
    batch_size: int = 32,
    redact: bool | None = None,
    memo=None,
    owners: list[str] | None = None,
) -> np.ndarray:
    """Unit-length vectors for CV texts under ``pooling`` (default: the ``MATCHER_CV_POOLING`` setting),
    read without who the person is (:mod:`~include.matcher.foundations.redaction`) unless ``redact``
    is false (default: ``MATCHER_REDACT_IDENTIFIERS``): the bias audit's "model alone".

    With a :class:`~include.matcher.foundations.vector_memo.VectorMemo` (and ``owners``, the CV key of
    each text), what the memo holds of exactly what the model reads is taken from it, the rest read."""
    from include.matcher.foundations.redaction import encoder_view

    pooling = pooling or cv_pooling()
    texts = encoder_view(list(texts), redact)
    window = getattr(model, "max_seq_length", None)
    if pooling == "truncate" and window:
        texts = [window_prefix(text, window) for text in texts]
    if memo is not None:
        return memo.recall(model, pooling, texts, owners or [], lambda todo: _read(model, todo, pooling, batch_size))
    return _read(model, texts, pooling, batch_size)


def _read(model, texts: list[str], pooling: str, batch_size: int) -> np.ndarray:
    if pooling == "truncate" or not texts:
        return model.encode(
            texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
    chunks, owners = [], []
    for index, text in enumerate(texts):
        pieces = chunk_text(text, model.tokenizer, model.max_seq_length)
        chunks.extend(pieces)
        owners.extend([index] * len(pieces))
    vectors = model.encode(
        chunks, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )
    owners = np.asarray(owners)
    pooled = np.stack(
        [
            (vectors[owners == i].mean(axis=0) if pooling == "mean" else vectors[owners == i].max(axis=0))
            for i in range(len(texts))
        ]
    )
    return pooled / np.linalg.norm(pooled, axis=1, keepdims=True).clip(min=1e-12)
