"""The stored records' base: JSON's own types, writers must declare what they write, readers name the field."""

from __future__ import annotations

import json

import pytest

from include.matcher.foundations.records import Count, Number, Record, UnreadableRecord


class Inner(Record):
    score: Number


class Sample(Record):
    record_name = "sample"

    name: str
    count: Count
    inner: Inner
    scores: dict[str, Number] = {}
    note: str | None = None


def test_a_record_reads_back_as_the_json_it_was_written_from_ints_staying_ints():
    written = {"name": "a", "count": 2, "inner": {"score": 1}, "scores": {"x": 0.5, "y": 3}, "note": None}
    record = Sample.written(written)
    assert record.to_json() == written and json.dumps(record.to_json()) == json.dumps(written)
    assert Sample.load(json.dumps(written).encode()) == record
    assert Sample.written({"name": "a", "count": 0, "inner": {"score": 0.1}}).to_json() == {
        "name": "a",
        "count": 0,
        "inner": {"score": 0.1},
    }  # what was not written is not invented


@pytest.mark.parametrize(
    ("broken", "problem"),
    [
        ({"count": "2"}, "sample.count: Input should be a valid integer"),
        ({"count": -1}, "sample.count: Input should be greater than or equal to 0"),
        ({"inner": {"score": True}}, "sample.inner.score: "),
        ({"inner": {"score": "0.5"}}, "sample.inner.score: "),
        ({"scores": {"x": None}}, "sample.scores.x: "),
        ({"name": None}, "sample.name: Input should be a valid string"),
    ],
)
def test_a_wrong_type_is_refused_naming_its_field_and_never_its_value(broken, problem):
    with pytest.raises(UnreadableRecord) as refused:
        Sample.load({"name": "a", "count": 1, "inner": {"score": 1}, **broken})
    assert str(refused.value).startswith(problem) and "'0.5'" not in str(refused.value)


def test_a_writer_must_declare_every_key_and_a_reader_skips_what_it_does_not_know():
    with pytest.raises(UnreadableRecord, match=r"^sample: Value error, written but not declared by Sample: extra"):
        Sample.written({"name": "a", "count": 1, "inner": {"score": 1}, "extra": 1})
    with pytest.raises(UnreadableRecord, match=r"^sample\.inner: .*not declared by Inner: more"):
        Sample.written({"name": "a", "count": 1, "inner": {"score": 1, "more": 2}})
    later = Sample.load({"name": "a", "count": 1, "inner": {"score": 1, "more": 2}, "extra": 1})
    assert later.to_json() == {"name": "a", "count": 1, "inner": {"score": 1}}


def test_bytes_that_are_not_json_or_nest_too_deep_are_unreadable_not_a_crash():
    with pytest.raises(UnreadableRecord, match="^sample: not JSON"):
        Sample.load(b"{not json")
    with pytest.raises(UnreadableRecord, match="^sample: not JSON"):
        Sample.load(b"[" * 200_000 + b"]" * 200_000)


def test_a_missing_field_is_named_in_full():
    with pytest.raises(UnreadableRecord, match=r"^sample\.inner\.score: Field required"):
        Sample.load({"name": "a", "count": 1, "inner": {}})
