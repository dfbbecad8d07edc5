import pytest

from include.matcher.foundations import layout
from include.matcher.foundations.pointers import RegistryEntry, read_production, swap_pointer
from include.matcher.foundations.storage import PreconditionFailed
from include.matcher.foundations.uris import join_uri
from include.matcher.stages.registry import list_versions, promote, rollback, version_for
from tests.helpers import report_json


def fake_candidate(storage, locations, run: str, promote_it: bool = True) -> str:
    """A candidate folder with a report; promote only copies files, so no real model is needed."""
    candidate = join_uri(locations.work, "runs", run, "candidate")
    storage.put_bytes(join_uri(candidate, "model.safetensors"), b"weights-" + run.encode())
    report = report_json(join_uri(locations.work, "runs", run), candidate, version_for(run), promote_it)
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
    assert production.uri == second
    assert production.previous == first.rsplit("/", 1)[1]
    assert (
        storage.get_bytes(join_uri(first, "model.safetensors")) == b"weights-scheduled__2026-11-24T02-00-00-00-00"
    )  # old versions kept
    assert [v.uri for v in list_versions(storage, locations.registry)] == [first, second]


def test_what_promote_and_rollback_write_reads_back_as_the_same_registry_entries(storage, locations):
    first = promote(fake_candidate(storage, locations, "night-a"), locations.registry, storage)
    promote(fake_candidate(storage, locations, "night-b"), locations.registry, storage)
    rollback(first.rsplit("/", 1)[1], locations.registry, storage)
    stored = [layout.production_pointer(locations.registry)] + [
        info.uri for info in storage.list(layout.models(locations.registry)) if layout.Model.is_entry(info.uri)
    ]
    assert len(stored) == 3
    for uri in stored:  # every key each writer put is declared, and the reader gives back the same JSON
        written = storage.get_json(uri)
        assert RegistryEntry.written(written).to_json() == written, uri
    production = read_production(storage, locations.registry)
    assert (production.uri, production.rolled_back_from) == (first, version_for("night-b"))


def test_promote_is_idempotent(storage, locations):
    report = fake_candidate(storage, locations, "r1")
    assert promote(report, locations.registry, storage) == promote(report, locations.registry, storage)
    assert len(list_versions(storage, locations.registry)) == 1


def test_refused_candidate_cannot_be_promoted(storage, locations):
    with pytest.raises(ValueError, match="refused"):
        promote(fake_candidate(storage, locations, "r1", promote_it=False), locations.registry, storage)
    assert read_production(storage, locations.registry) is None


def test_concurrent_pointer_swaps_one_wins_one_fails(storage, locations):
    uri = layout.production_pointer(locations.registry)

    def entry(version: str) -> dict:
        return {"version": version, "uri": f"{locations.registry}/models/{version}", "promoted_at": "2026-12-07"}

    swap_pointer(storage, uri, entry("a"), None)
    seen = read_production(storage, locations.registry)
    swap_pointer(storage, uri, entry("b"), seen)  # the winner
    with pytest.raises(PreconditionFailed):
        swap_pointer(storage, uri, entry("c"), seen)  # read the same state, lost the race
    assert read_production(storage, locations.registry).version == "b"


def test_version_names_are_reproducible_and_sort_by_run_time():
    night1 = "s3://b/work/runs/scheduled__2026-11-24T02-00-00-00-00"
    night2 = "s3://b/work/runs/manual__2026-11-25T08-12-48.750116-00-00"
    assert version_for(night1) == version_for(night1)
    assert version_for(night1).startswith("v20261124T020000Z-")
    assert sorted([version_for(night2), version_for(night1)]) == [version_for(night1), version_for(night2)]


def test_run_ids_that_slug_alike_get_folders_of_their_own(locations):
    """``nightly 1`` and ``nightly/1`` once shared one run folder, so the second run reused the
    first's manifest and candidate: each exact run id now has its own folder (and version name)."""
    for first, second in (("nightly 1", "nightly/1"), ("run ü", "run é"), ("/x", "x")):
        one, other = locations.run_uri(first), locations.run_uri(second)
        assert one != other, (first, second)
        assert version_for(one) != version_for(other)
        assert locations.run_uri(first) == one  # the same run always finds its folder again
    readable = locations.run_uri("scheduled__2026-11-25T02:00:00+00:00").rsplit("/", 1)[1]
    assert readable.startswith("scheduled__2026-11-25T02-00-00-00-00-")
    assert version_for(locations.run_uri("scheduled__2026-11-25T02:00:00+00:00")).startswith("v20261125T020000Z-")


def test_a_second_promote_into_an_existing_version_is_refused_and_the_weights_stay(storage, locations):
    """A registry version is written once: another run (or the same run with another model) naming
    the version already in production is refused, and the weights served stay byte for byte."""
    import hashlib

    from include.matcher.stages.registry import VersionExists

    first = promote(fake_candidate(storage, locations, "nightly-1"), locations.registry, storage)
    weights = join_uri(first, "model.safetensors")
    digest = hashlib.sha256(storage.get_bytes(weights)).hexdigest()
    entry = storage.get_json(join_uri(first, "entry.json"))

    # Another run whose report names the same version (what colliding run folders once produced).
    other = fake_candidate(storage, locations, "nightly-2")
    report = storage.get_json(other)
    storage.put_json(other, {**report, "version": version_for("nightly-1")})
    with pytest.raises(VersionExists, match="written once"):
        promote(other, locations.registry, storage)

    # The same run, retrained after its promotion (fine_tune cleared and re-run): another model.
    storage.put_bytes(join_uri(locations.work, "runs", "nightly-1", "candidate", "model.safetensors"), b"retrained")
    with pytest.raises(VersionExists, match="another model"):
        promote(
            join_uri(locations.work, "runs", "nightly-1", "candidate", "validation_report.json"),
            locations.registry,
            storage,
        )

    assert hashlib.sha256(storage.get_bytes(weights)).hexdigest() == digest
    assert storage.get_json(join_uri(first, "entry.json")) == entry
    assert read_production(storage, locations.registry).version == entry["version"]


def test_a_promotion_interrupted_after_its_copy_finishes_on_retry(storage, locations):
    """The claim is the run's own: a retry after the copy (or after entry.json) completes the promotion."""
    from include.matcher.foundations import layout

    report_uri = fake_candidate(storage, locations, "r-retry")
    version = layout.version(locations.registry, version_for("r-retry"))
    original = storage.put_json

    def fail_on_pointer(uri, value, **conditions):
        if uri.endswith("production.json"):
            raise ConnectionError("S3 went away before the pointer moved")
        return original(uri, value, **conditions)

    storage.put_json = fail_on_pointer
    with pytest.raises(ConnectionError):
        promote(report_uri, locations.registry, storage)
    storage.put_json = original
    assert storage.exists(version.entry) and read_production(storage, locations.registry) is None
    assert promote(report_uri, locations.registry, storage) == version.uri
    assert read_production(storage, locations.registry).version == version_for("r-retry")


def test_where_approval_is_required_only_a_recorded_approval_by_a_person_promotes(storage, locations):
    """Whatever a task's state says (an ``approve`` marked successful by hand, a shell's ``promote``),
    the registry reads the decision from the report: none, or one without a person, promotes nothing."""
    from include.matcher.stages.approval import APPROVED, NOT_REQUIRED, record_approval
    from include.matcher.stages.registry import PromotionRefused

    report = fake_candidate(storage, locations, "r1")
    with pytest.raises(PromotionRefused, match="needs a person's recorded approval"):
        promote(report, locations.registry, storage, approval_required=True)
    record_approval(report, storage, NOT_REQUIRED)
    with pytest.raises(PromotionRefused, match="not required"):
        promote(report, locations.registry, storage, approval_required=True)
    record_approval(report, storage, APPROVED)  # no one named: not a person's decision
    with pytest.raises(PromotionRefused):
        promote(report, locations.registry, storage, approval_required=True)
    assert read_production(storage, locations.registry) is None
    record_approval(report, storage, APPROVED, by="reviewer")
    assert promote(report, locations.registry, storage, approval_required=True)
    assert read_production(storage, locations.registry).run.endswith("/r1")


@pytest.mark.parametrize("state", ["rejected", "timed out (rejected)"])
def test_a_recorded_rejection_stops_a_promotion_even_where_approval_is_optional(storage, locations, state):
    from include.matcher.stages.approval import record_approval
    from include.matcher.stages.registry import PromotionRefused

    report = fake_candidate(storage, locations, "r1")
    record_approval(report, storage, state, by="reviewer")
    with pytest.raises(PromotionRefused, match="by a reviewer"):
        promote(report, locations.registry, storage, approval_required=False)
    assert read_production(storage, locations.registry) is None


def test_the_cli_promote_honours_a_rejection_and_the_deployment_s_requirement(storage, locations, cli_env):
    """``promote --report`` (case 13 of issue 27 ignored a recorded rejection); ``approve`` records a decision."""
    import json
    import subprocess
    import sys

    def cli(*args, **env):
        return subprocess.run(
            [sys.executable, "-m", "include.matcher", *args],
            env={**cli_env, **env},
            capture_output=True,
            text=True,
            timeout=300,
        )

    report = fake_candidate(storage, locations, "r1")
    required = cli("promote", "--report", report, MATCHER_REQUIRE_APPROVAL="true")
    assert required.returncode == 2 and "needs a person's recorded approval" in required.stderr
    rejected = cli("approve", "--report", report, "--reject", "--by", "dpo")
    assert rejected.returncode == 0 and json.loads(rejected.stdout)["state"] == "rejected"
    refused = cli("promote", "--report", report, MATCHER_REQUIRE_APPROVAL="false")
    assert refused.returncode == 2 and "rejected by a reviewer" in refused.stderr
    assert read_production(storage, locations.registry) is None
    assert cli("approve", "--report", report, "--by", "lead").returncode == 0
    promoted = cli("promote", "--report", report, MATCHER_REQUIRE_APPROVAL="true")
    assert promoted.returncode == 0, promoted.stderr[-2000:]
    assert read_production(storage, locations.registry).run.endswith("/r1")
