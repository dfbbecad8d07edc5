import numpy as np
import pytest

from include.matcher.foundations.encoding import encode_cvs
from include.matcher.foundations.vector_memo import VectorMemo, reader_id

TEXTS = ["Line cook, pasta and grill for 200 covers.", "Captain, 5,000 hours on the A320.", "Pastry chef."]
KEYS = ["CHEF/line.pdf", "PILOT/captain.pdf", "CHEF/pastry.pdf"]


def test_a_memo_reads_each_text_once_and_answers_the_next_night_with_the_same_vectors(base_model):
    first = VectorMemo()
    fresh = encode_cvs(base_model, TEXTS + TEXTS[:1], memo=first, owners=KEYS + KEYS[:1])
    assert (first.read, first.recalled) == (3, 0)  # the repeat is read once
    np.testing.assert_allclose(fresh, encode_cvs(base_model, TEXTS + TEXTS[:1]), atol=1e-5)

    next_night = VectorMemo.from_parquet(first.to_parquet(), source="runs/first")
    calls = []
    original = base_model.encode
    base_model.encode = lambda texts, **kwargs: calls.append(list(texts)) or original(texts, **kwargs)
    try:
        again = encode_cvs(base_model, [*TEXTS, "Sous chef, sauces."], memo=next_night, owners=[*KEYS, "CHEF/sous.pdf"])
    finally:
        del base_model.encode
    assert calls == [["Sous chef, sauces."]]  # only what the first night did not read
    assert (next_night.read, next_night.recalled) == (1, 3)
    np.testing.assert_array_equal(again[:3], fresh[:3])
    assert next_night.summary() == {"from": "runs/first", "recalled": 3, "read": 1}


def test_a_memo_forgets_the_cvs_it_is_told_to_and_keeps_only_what_the_night_used(base_model):
    import io

    import pyarrow.parquet as pq

    first = VectorMemo()
    encode_cvs(base_model, TEXTS, memo=first, owners=KEYS)
    second = VectorMemo.from_parquet(first.to_parquet(forget={"PILOT/captain.pdf"}))
    assert len(second.remembered) == 2
    encode_cvs(base_model, TEXTS[:1], memo=second, owners=KEYS[:1])
    table = pq.read_table(io.BytesIO(second.to_parquet()))
    assert table.column("key").to_pylist() == ["CHEF/line.pdf"]  # the night used one: the memo holds one
    assert set(table.column_names) == {"key", "reader", "text_hash", "vector"}  # no text


def test_a_vector_is_remembered_only_for_the_same_weights_reading_length_pooling_and_precision(base_model):
    import copy

    import torch

    from include.matcher.foundations.models import load_model

    ids = {reader_id(base_model, "truncate")}
    ids.add(reader_id(base_model, "mean"))
    nudged = copy.deepcopy(base_model)
    with torch.no_grad():
        next(nudged.parameters())[0, 0] += 1e-3
    ids.add(reader_id(nudged, "truncate"))
    shorter = copy.deepcopy(base_model)
    shorter.max_seq_length = 128
    ids.add(reader_id(shorter, "truncate"))
    ids.add(reader_id(load_model("all-MiniLM-L6-v2", device="cpu", precision="bf16"), "truncate"))
    assert len(ids) == 5
    assert reader_id(load_model("all-MiniLM-L6-v2", device="cpu", precision="fp32"), "truncate") == reader_id(
        base_model, "truncate"
    )  # the same weights loaded again: the same reader


def test_a_memo_needs_the_owner_of_every_text(base_model):
    with pytest.raises(ValueError, match="owners"):
        encode_cvs(base_model, TEXTS, memo=VectorMemo(), owners=KEYS[:1])


def test_an_erasure_removes_a_cv_s_rows_from_a_memo(base_model):
    """The memo is Parquet with a ``key`` column: the erasure's own scrub takes the CV's rows out."""
    from include.matcher.stages.erasure import Targets, scrub_parquet

    memo = VectorMemo()
    encode_cvs(base_model, TEXTS, memo=memo, owners=KEYS)
    targets = Targets()
    targets.add("PILOT/captain.pdf", "s3://raw/cvs/PILOT/captain.pdf")
    blob, removed = scrub_parquet(memo.to_parquet(), targets)
    assert removed == 1
    assert {owner for owner, _ in VectorMemo.from_parquet(blob).remembered.values()} == {
        "CHEF/line.pdf",
        "CHEF/pastry.pdf",
    }
