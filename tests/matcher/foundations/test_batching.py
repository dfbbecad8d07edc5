import pickle
from collections import Counter

from datasets import Dataset

from include.matcher.foundations.batching import CategoryDistinctBatchSampler, category_distinct_sampler
from include.matcher.stages.pairs import build_examples

JOBS = {c: [f"{c} job one", f"{c} job two"] for c in "ABCDEFGH"}
CVS = [
    {"key": f"{c}/{i}", "category": c, "text": f"cv {c} {i}"} for c in "ABCDEFGH" for i in range(9 if c == "A" else 3)
]


def batches_for(examples, batch_size=4, epoch=0):
    dataset = Dataset.from_dict({"anchor": [row["anchor"] for row in examples.rows]})
    sampler = category_distinct_sampler(examples.metadata)(dataset, batch_size=batch_size, drop_last=False, seed=7)
    sampler.set_epoch(epoch)
    return sampler, list(sampler)


def test_no_batch_holds_two_examples_of_one_category_and_every_example_is_used_once():
    """30 examples (9 of category A, 3 of each other), batches of 4."""
    examples = build_examples(CVS, JOBS, "multiple_negatives", 1.0, seed=0)
    sampler, batches = batches_for(examples)
    used = [index for batch in batches for index in batch]
    assert sorted(used) == list(range(len(examples.rows)))
    for batch in batches:
        categories = [examples.metadata[i]["category"] for i in batch]
        assert len(set(categories)) == len(categories)
    assert len(sampler) == len(batches)  # the LR schedule is planned from the real count
    # A holds 9 of 30 examples, so it needs 9 batches; fullest-first filling needs no more than that.
    assert len(batches) == 9 and Counter(len(b) for b in batches)[4] == 7


def test_a_hard_negative_never_shares_a_batch_with_an_anchor_of_its_category():
    hard = {cv["key"]: [("B" if cv["category"] != "B" else "C", 0)] for cv in CVS}
    examples = build_examples(CVS, JOBS, "multiple_negatives", 1.0, seed=0, hard_negatives=hard)
    _, batches = batches_for(examples)
    for batch in batches:
        anchors = {examples.metadata[i]["category"] for i in batch}
        negatives = {examples.metadata[i]["negative_category"] for i in batch}
        assert not anchors & negatives


def test_epochs_are_shuffled_differently_and_the_sampler_survives_checkpoint_pickling():
    examples = build_examples(CVS, JOBS, "multiple_negatives", 1.0, seed=0)
    assert batches_for(examples, epoch=0)[1] != batches_for(examples, epoch=1)[1]
    assert batches_for(examples, epoch=1)[1] == batches_for(examples, epoch=1)[1]
    restored = pickle.loads(pickle.dumps(category_distinct_sampler(examples.metadata)))
    assert restored.func is CategoryDistinctBatchSampler
