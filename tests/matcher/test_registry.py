import pytest

from include.matcher.registry import list_versions, production_uri, promote, read_production, swap_pointer, version_for
from include.matcher.storage import PreconditionFailed, join_uri


def fake_candidate(storage, locations, run: str, promote_it: bool = True) -> str:
    """A candidate folder with a report; promote only copies files, so no real model is needed."""
    candidate = join_uri(locations.work, "runs", run, "candidate")
    storage.put_bytes(join_uri(candidate, "model.safetensors"), b"weights-" + run.encode())
    report = {
        "run": join_uri(locations.work, "runs", run),
        "candidate": candidate,
        "version": version_for(run),
        "candidate_metrics": {"metrics": {"mrr@10": 0.8}},
        "decision": {"promote": promote_it, "primary_metric": "mrr@10", "reason": "test"},
    }
    uri = join_uri(candidate, "validation_report.json")
    storage.put_json(uri, report)
    return uri


def test_promote_copies_the_version_and_moves_the_pointer(storage, locations):
    first = promote(
        fake_candidate(storage, locations, "scheduled__2026-11-24T02-00-00-00-00"), locations.registry, storage
    )
    second = promote(
        fake_candidate(storage, locations, "scheduled__2026-11-25T02-00-00-00-00"), locations.registry, storage
    )
    production = read_production(storage, locations.registry)
    assert production["uri"] == second
    assert production["previous"] == first.rsplit("/", 1)[1]
    assert (
        storage.get_bytes(join_uri(first, "model.safetensors")) == b"weights-scheduled__2026-11-24T02-00-00-00-00"
    )  # old versions kept
    assert [v["uri"] for v in list_versions(storage, locations.registry)] == [first, second]


def test_promote_is_idempotent(storage, locations):
    report = fake_candidate(storage, locations, "r1")
    assert promote(report, locations.registry, storage) == promote(report, locations.registry, storage)
    assert len(list_versions(storage, locations.registry)) == 1


def test_refused_candidate_cannot_be_promoted(storage, locations):
    with pytest.raises(ValueError, match="refused"):
        promote(fake_candidate(storage, locations, "r1", promote_it=False), locations.registry, storage)
    assert read_production(storage, locations.registry) is None


def test_concurrent_pointer_swaps_one_wins_one_fails(storage, locations):
    uri = production_uri(locations.registry)
    swap_pointer(storage, uri, {"version": "a"}, None)
    seen = read_production(storage, locations.registry)
    swap_pointer(storage, uri, {"version": "b"}, seen)  # the winner
    with pytest.raises(PreconditionFailed):
        swap_pointer(storage, uri, {"version": "c"}, seen)  # read the same state, lost the race
    assert read_production(storage, locations.registry)["version"] == "b"


def test_version_names_are_reproducible_and_sort_by_run_time():
    night1 = "s3://b/work/runs/scheduled__2026-11-24T02-00-00-00-00"
    night2 = "s3://b/work/runs/manual__2026-11-25T08-12-48.750116-00-00"
    assert version_for(night1) == version_for(night1)
    assert version_for(night1).startswith("v20261124T020000Z-")
    assert sorted([version_for(night2), version_for(night1)]) == [version_for(night1), version_for(night2)]
