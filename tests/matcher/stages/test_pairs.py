import pytest

from include.matcher.foundations.context import RunContext
from include.matcher.foundations.settings import SplitConfig
from include.matcher.foundations.text import text_fingerprint
from include.matcher.foundations.uris import join_uri
from include.matcher.stages.pairs import NegativeQuota, assign_split, build_examples, split_corpus

JOBS = {"A": ["job a one", "job a two"], "B": ["job b"], "C": ["job c"]}


def cvs(n_per_category=6):
    return [
        {"key": f"{c}/{i}.txt", "category": c, "text": f"cv {c} {i}", "text_hash": text_fingerprint(f"cv {c} {i}")}
        for c in "ABC"
        for i in range(n_per_category)
    ]


def test_negative_quota_honours_fractional_ratios():
    for ratio, positives, expected in ((0.5, 10, 5), (1.0, 7, 7), (2.5, 4, 10), (0.0, 5, 0), (0.3, 10, 3)):
        quota = NegativeQuota(ratio)
        assert sum(quota.next() for _ in range(positives)) == expected


def test_cosine_examples_have_labels_and_ratio():
    examples = build_examples(cvs(), JOBS, "cosine", 0.5, seed=1)
    labels = [row["label"] for row in examples.rows]
    positives = labels.count(1.0)
    assert positives == 6 * 2 + 6 + 6  # every CV with each description of its category
    assert labels.count(0.0) == positives // 2
    assert set(examples.rows[0]) == {"sentence1", "sentence2", "label"}


def test_negatives_come_from_other_categories():
    examples = build_examples(cvs(), JOBS, "cosine", 2.0, seed=1)
    for row, meta in zip(examples.rows, examples.metadata, strict=True):
        if row["label"] == 0.0:
            assert meta["job_category"] != meta["category"]
            assert row["sentence2"] not in JOBS[meta["category"]]


def test_triplet_and_mnr_shapes():
    triplets = build_examples(cvs(), JOBS, "triplet", 1.0, seed=1)
    assert all(set(r) == {"anchor", "positive", "negative"} for r in triplets.rows)
    assert all(
        r["negative"] not in (JOBS[m["category"]]) for r, m in zip(triplets.rows, triplets.metadata, strict=True)
    )
    mnr = build_examples(cvs(), JOBS, "multiple_negatives", 1.0, seed=1)
    assert all(set(r) == {"anchor", "positive"} for r in mnr.rows)
    assert len(mnr.rows) == 6 + 6 + 6  # one description per CV, taken in turn: both of A's are used
    assert sorted(m["job_index"] for m in mnr.metadata if m["category"] == "A") == [0, 0, 0, 1, 1, 1]


def test_metadata_matches_examples_row_by_row():
    examples = build_examples(cvs(), JOBS, "cosine", 1.0, seed=3)
    assert len(examples.rows) == len(examples.metadata)
    for row, meta in zip(examples.rows, examples.metadata, strict=True):
        assert row["sentence1"].startswith(f"cv {meta['category']}")
        assert row["label"] == meta["label"]
        assert meta["split"] == "train"


def test_examples_are_deterministic_for_a_seed():
    assert (
        build_examples(cvs(), JOBS, "cosine", 1.0, seed=5).rows
        == build_examples(cvs(), JOBS, "cosine", 1.0, seed=5).rows
    )


def test_split_is_stable_as_the_corpus_grows_and_duplicates_stay_together():
    config = SplitConfig(validation_fraction=0.2, test_fraction=0.3)
    small = cvs(10)
    grown = small + cvs(30)[10:]
    small_split = {cv["key"]: assign_split(cv["text_hash"], config) for cv in small}
    grown_split = {cv["key"]: assign_split(cv["text_hash"], config) for cv in grown}
    assert all(grown_split[key] == side for key, side in small_split.items())
    duplicate = {**small[0], "key": "A/copy.txt", "text": small[0]["text"].upper() + "  "}
    duplicate["text_hash"] = text_fingerprint(duplicate["text"])
    assert assign_split(duplicate["text_hash"], config) == small_split[small[0]["key"]]


def test_split_fractions_are_roughly_respected():
    many = [
        {"key": str(i), "category": "A", "text": str(i), "text_hash": text_fingerprint(f"cv number {i}")}
        for i in range(2000)
    ]
    by_split, _ = split_corpus(many, JOBS, SplitConfig(validation_fraction=0.1, test_fraction=0.2))
    assert len(by_split["test"]) == pytest.approx(400, abs=60)
    assert len(by_split["validation"]) == pytest.approx(200, abs=50)


def test_cvs_without_job_description_are_reported():
    extra = cvs(2) + [{"key": "Z/1.txt", "category": "Z", "text": "z", "text_hash": text_fingerprint("z")}]
    _, unknown = split_corpus(extra, JOBS, SplitConfig())
    assert unknown == ["Z/1.txt"]


class OverlapEncoder:
    """A stand-in encoder: vectors are bags of a few words, so similarities are known in advance."""

    WORDS = ["kitchen", "grill", "money", "audit", "flight"]

    def encode(self, texts, **_):
        import numpy as np

        vectors = np.array([[float(word in text.lower()) for word in self.WORDS] for text in texts]) + 1e-3
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_hard_negatives_are_the_closest_other_categories_beyond_the_margin():
    from include.matcher.stages.hard_negatives import mine_hard_negatives

    jobs = {
        "CHEF": ["kitchen grill"],
        "COOK": ["kitchen grill"],  # a near-synonym category: as close as the CV's own, a false negative
        "BAKER": ["kitchen"],
        "ACCOUNTANT": ["money audit"],
        "PILOT": ["flight"],
    }
    cvs = [{"key": "c1", "category": "CHEF", "text": "grill kitchen"}]
    mined = mine_hard_negatives(OverlapEncoder(), cvs, jobs, count=2, margin=0.05)
    assert mined["c1"][0] == ("BAKER", 0)  # the hardest real negative
    assert ("COOK", 0) not in mined["c1"]  # skipped by the margin


def test_hard_negatives_shape_the_examples_for_each_loss():
    from include.matcher.stages.pairs import build_examples

    jobs = {"CHEF": ["cook a", "cook b"], "BAKER": ["bake"], "PILOT": ["fly"]}
    cvs = [{"key": "c1", "category": "CHEF", "text": "grill"}]
    hard = {"c1": [("BAKER", 0)]}
    mnr = build_examples(cvs, jobs, "multiple_negatives", 1.0, seed=0, hard_negatives=hard)
    assert [row["negative"] for row in mnr.rows] == ["bake"] and all(m["hard"] for m in mnr.metadata)
    triplet = build_examples(cvs, jobs, "triplet", 1.0, seed=0, hard_negatives=hard)
    assert {row["negative"] for row in triplet.rows} == {"bake"}
    plain = build_examples(cvs, jobs, "multiple_negatives", 1.0, seed=0)
    assert "negative" not in plain.rows[0]


def test_near_duplicates_never_straddle_splits():
    import hashlib

    from include.matcher.foundations.settings import SplitConfig
    from include.matcher.stages.near_duplicates import near_duplicate_groups
    from include.matcher.stages.pairs import split_corpus

    base = " ".join(f"word{i}" for i in range(300))
    cvs = []
    for n in range(40):  # 40 CVs, each with a near-twin (one word changed) and an unrelated CV
        original = f"{base} person{n} " + " ".join(f"skill{n}x{k}" for k in range(60))
        twin = original.replace("word7 ", f"edited{n} ", 1)
        other = " ".join(f"other{n}w{k}" for k in range(200))
        for suffix, text in (("a", original), ("b", twin), ("c", other)):
            cvs.append(
                {
                    "key": f"CHEF/{n}{suffix}",
                    "category": "CHEF",
                    "text": text,
                    "text_hash": hashlib.sha256(text.encode()).hexdigest(),
                }
            )
    groups = near_duplicate_groups(cvs)
    assert all(groups[f"CHEF/{n}a"] == groups[f"CHEF/{n}b"] for n in range(40))
    assert len(set(groups.values())) == 40 * 2  # each twin pair is one group, every other CV its own
    by_split, _ = split_corpus(cvs, {"CHEF": ["cook"]}, SplitConfig(validation_fraction=0.2, test_fraction=0.3))
    side = {cv["key"]: name for name, rows in by_split.items() for cv in rows}
    assert all(side[f"CHEF/{n}a"] == side[f"CHEF/{n}b"] for n in range(40))
    assert len({side[f"CHEF/{n}a"] for n in range(40)}) == 3  # and the groups still spread over the splits


def test_training_reads_cvs_without_their_title_line_unless_asked():
    titled = [{"key": "A/1", "category": "A", "text": "Senior A Specialist\nten years of a-work", "text_hash": "x"}]
    stripped = build_examples(titled, JOBS, "multiple_negatives", 1.0, seed=0)
    assert {row["anchor"] for row in stripped.rows} == {"ten years of a-work"}
    kept = build_examples(titled, JOBS, "multiple_negatives", 1.0, seed=0, strip_titles=False)
    assert {row["anchor"] for row in kept.rows} == {"Senior A Specialist\nten years of a-work"}
    one_line = build_examples(
        cvs(1), JOBS, "multiple_negatives", 1.0, seed=0
    )  # nothing left once stripped: keep it whole
    assert {row["anchor"] for row in one_line.rows} == {"cv A 0", "cv B 0", "cv C 0"}


def test_build_pairs_refuses_an_empty_or_single_category_training_split(storage, locations):
    import pytest

    from include.matcher.foundations.settings import PipelineConfig
    from include.matcher.stages.pairs import UntrainableData, build_pairs

    storage.put_json(locations.jobs_file, {"CHEF": "Cook.", "PILOT": "Pilot."})
    run = join_uri(locations.work, "runs", "one-category")
    corpus = join_uri(run, "corpus.jsonl")

    def corpus_of(cvs):
        rows = []
        for i, (category, text) in enumerate(cvs):
            uri = join_uri(locations.work, "texts", f"{i}.json")
            storage.put_json(uri, {"text": text})
            rows.append(
                {
                    "key": f"{category}/{i}.txt",
                    "category": category,
                    "content_hash": str(i),
                    "text_hash": text_fingerprint(text),
                    "text_uri": uri,
                    "chars": len(text),
                }
            )
        storage.put_jsonl(corpus, rows)

    import random

    words = [
        "sauce",
        "grill",
        "pastry",
        "brasserie",
        "menu",
        "stock",
        "knife",
        "oven",
        "bread",
        "fish",
        "garnish",
        "plating",
        "station",
        "brigade",
        "butcher",
    ]
    rng = random.Random(1)
    corpus_of([("CHEF", " ".join(rng.choice(words) + str(rng.randrange(1000)) for _ in range(40))) for _ in range(30)])
    with pytest.raises(UntrainableData, match="one category only .'CHEF'"):
        build_pairs(corpus, RunContext(run, PipelineConfig(locations=locations), storage))
    corpus_of([("ASTRONAUT", "Spacewalks.")] * 3)
    with pytest.raises(
        UntrainableData, match="training split is empty.*3 of them in categories missing from the jobs file"
    ):
        build_pairs(corpus, RunContext(run, PipelineConfig(locations=locations), storage))


def test_the_same_text_under_two_categories_is_reported_and_never_held_out():
    from include.matcher.stages.corpus import several_categories

    twin = "Bookkeeper and payroll clerk; month-end close, invoices and ledger reconciliation for a retail chain."
    corpus = cvs(20) + [
        {"key": f"{category}/twin.txt", "category": category, "text": twin, "text_hash": text_fingerprint(twin)}
        for category in ("A", "B")
    ]
    assert several_categories(corpus) == {"A/twin.txt": ["A", "B"], "B/twin.txt": ["A", "B"]}
    by_split, _ = split_corpus(corpus, JOBS, SplitConfig(validation_fraction=0.45, test_fraction=0.45))
    held_out = {cv["key"] for name in ("validation", "test") for cv in by_split[name]}
    assert {"A/twin.txt", "B/twin.txt"} <= {cv["key"] for cv in by_split["train"]} and not held_out & {
        "A/twin.txt",
        "B/twin.txt",
    }


def test_category_names_are_compared_nfc_normalised():
    import unicodedata

    from include.matcher.foundations.jobs import parse_job_descriptions
    from include.matcher.stages.ingest import classify_key

    composed, decomposed = unicodedata.normalize("NFC", "CAFÉ"), unicodedata.normalize("NFD", "CAFÉ")
    assert composed != decomposed
    assert classify_key(f"{decomposed}/cv.txt") == (composed, None)
    assert list(parse_job_descriptions(f'{{"{decomposed}": "Runs a café."}}'.encode())) == [composed]
    with pytest.raises(ValueError, match="appears twice"):
        parse_job_descriptions(f'{{"{decomposed}": "a", "{composed}": "b"}}'.encode())


def test_name_augmentation_puts_a_name_of_every_group_in_turn_never_an_audited_one():
    from collections import Counter

    from include.matcher.foundations.audit_names import AUDITED_AT_MOST, load_audit_names
    from include.matcher.foundations.settings import TrainingConfig
    from include.matcher.stages.pairs import training_examples

    names = load_audit_names()
    plain = build_examples(cvs(8), JOBS, "cosine", 1.0, seed=3, strip_titles=False)
    named = training_examples(
        cvs(8), JOBS, TrainingConfig(loss="cosine", name_augmentation=True, seed=3, strip_titles=False)
    )
    group_of = {name: group for group, name in names.named()}
    lines = [row["sentence1"].split("\n", 1) for row in named.rows]
    assert all(line[0] in group_of for line in lines)
    assert [line[1] for line in lines] == [row["sentence1"] for row in plain.rows]  # same pairs, same negatives
    assert [row["sentence2"] for row in named.rows] == [row["sentence2"] for row in plain.rows]
    audited = {name for group in names.groups.values() for name in group[:AUDITED_AT_MOST]}
    assert not audited & {line[0] for line in lines}
    per_cv = {meta["source_key"]: line[0] for meta, line in zip(named.metadata, lines, strict=True)}
    counts = Counter(group_of[name] for name in per_cv.values())
    assert set(counts) == set(names.groups) and max(counts.values()) - min(counts.values()) <= 1


def test_counterfactual_rows_read_each_cv_under_two_groups_names_in_the_same_place():
    from include.matcher.foundations.audit_names import AuditNames, email_of

    names = AuditNames({"x": ("Ann Lee", "Amy Low"), "y": ("Bo Ray", "Ben Roe"), "z": ("Cy Fox", "Cal Fry")})
    cvs = [{"key": f"CHEF/{i}", "category": "CHEF", "text": f"Title\nCook number {i}"} for i in range(6)]
    jobs = {"CHEF": ["Chefs cook."], "PILOT": ["Pilots fly."]}
    examples = build_examples(cvs, jobs, "multiple_negatives", 1, 0, consistency_names=names)
    group_of = {name: group for group, members in names.groups.items() for name in members}
    for row in examples.rows:
        assert row["anchor"] != row["renamed"]
        first, second = row["anchor"].split("\n", 1), row["renamed"].split("\n", 1)
        assert first[1] == second[1]  # the same CV
        named = {
            line: next(n for n in group_of if line in (n, f"{email_of(n)} | +1 (555) 010-0199"))
            for line in (first[0], second[0])
        }
        assert group_of[named[first[0]]] != group_of[named[second[0]]]  # two groups
        assert ("@" in first[0]) == ("@" in second[0])  # the same placement
    with pytest.raises(ValueError, match="multiple_negatives only"):
        build_examples(cvs, jobs, "cosine", 1, 0, consistency_names=names)


def test_cvs_served_as_pooled_windows_train_on_each_window_and_truncated_ones_whole(base_model, monkeypatch):
    from include.matcher.foundations.encoding import chunk_text
    from include.matcher.foundations.settings import TrainingConfig
    from include.matcher.foundations.text import training_text
    from include.matcher.stages.pairs import training_examples

    long_cv = {"key": "CHEF/long.txt", "category": "CHEF", "text": "Sous chef\n" + "grill, sauces, pastry; " * 60}
    jobs = {"CHEF": ["Cook."], "PILOT": ["Pilot."]}
    config = TrainingConfig(max_seq_length=64)
    windows = chunk_text(training_text(long_cv["text"], True), base_model.tokenizer, 64)
    assert len(windows) > 2

    monkeypatch.setenv("MATCHER_CV_POOLING", "mean")
    pooled = training_examples([long_cv], jobs, config, model=base_model)
    assert sorted(row["anchor"] for row in pooled.rows) == sorted(windows)  # as serving pools them
    assert {about["source_key"] for about in pooled.metadata} == {"CHEF/long.txt"}

    monkeypatch.setenv("MATCHER_CV_POOLING", "truncate")
    whole = training_examples([long_cv], jobs, config, model=base_model)
    assert [row["anchor"] for row in whole.rows] == [training_text(long_cv["text"], True)]
