"""CV encoding: cutting a long text before tokenising changes no embedding, whatever the text holds."""

from __future__ import annotations

import random

import numpy as np

from include.matcher.foundations.encoding import encode_cvs, window_prefix

ODD_WORDS = [
    "\u200b\u200b",  # zero-width spaces: the tokenizer drops them, so they must not count as words
    "----",
    "•",
    "naïve",
    "Zürich",
    "数据科学家",  # CJK: a token per character
    "🙂",
    "C++/C#",
    "e-mail:jane.doe@example.org",
    "x" * 150,  # longer than WordPiece reads: one [UNK]
    "²³",
]


def long_cv(seed: int, words: int = 900) -> str:
    rng = random.Random(seed)
    plain = ["managed", "payroll", "audits", "ledger", "python", "kitchen", "pilot", "nurse", "budget", "team"]
    return " ".join(rng.choice(plain + ODD_WORDS) for _ in range(words))


def test_the_cut_keeps_every_token_the_model_reads(base_model):
    texts = [long_cv(seed) for seed in range(4)] + ["\u200b " * 2000 + "short tail after noise", "tiny"]
    assert all(len(window_prefix(t, base_model.max_seq_length)) < len(t) for t in texts[:4])  # it does cut
    assert window_prefix("tiny", 256) == "tiny"
    whole = base_model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    assert np.array_equal(encode_cvs(base_model, texts, pooling="truncate", redact=False), whole)


def test_the_cut_holds_at_least_the_window_in_tokens(base_model):
    tokenizer, window = base_model.tokenizer, base_model.max_seq_length
    for seed in range(20):
        cut = window_prefix(long_cv(seed), window)
        assert len(tokenizer(cut, add_special_tokens=False)["input_ids"]) >= window
