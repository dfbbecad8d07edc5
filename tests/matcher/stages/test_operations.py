import pytest

from include.matcher.foundations.models import resolve_model
from include.matcher.foundations.pointers import read_current, read_production
from include.matcher.foundations.uris import join_uri
from include.matcher.stages.operations import rollback_and_refresh
from include.matcher.stages.registry import promote
from tests.helpers import report_json


def promoted_version(storage, locations, run: str) -> str:
    candidate = join_uri(locations.work, "runs", run, "candidate")
    storage.upload_dir(resolve_model("all-MiniLM-L6-v2"), candidate)
    report = join_uri(candidate, "validation_report.json")
    storage.put_json(report, report_json(run, candidate, f"v-{run}", mrr=0.5))
    return promote(report, locations.registry, storage)


def test_rollback_repoints_production_and_refreshes_embeddings(storage, locations):
    storage.put_json(locations.jobs_file, {"CHEF": "Cook in a kitchen."})
    text_uri = join_uri(locations.work, "texts", "a.json")
    storage.put_json(text_uri, {"text": "Grill cook"})
    storage.put_json(
        join_uri(locations.work, "state", "ledger.json"),
        {
            "objects": {
                "raw/cvs/CHEF/a.txt": {
                    "key": "raw/cvs/CHEF/a.txt",
                    "etag": '"e"',
                    "size": 10,
                    "category": "CHEF",
                    "status": "parsed",
                    "content_hash": "h",
                    "text_hash": "t",
                    "text_uri": text_uri,
                    "chars": 10,
                }
            },
            "jobs_file_etag": None,
        },
    )
    promoted_version(storage, locations, "night1")
    promoted_version(storage, locations, "night2")
    assert read_production(storage, locations.registry).version == "v-night2"

    rollback_and_refresh("v-night1", locations, storage)

    production = read_production(storage, locations.registry)
    assert production.version == "v-night1" and production.rolled_back_from == "v-night2"
    current = read_current(storage, locations.embeddings)
    assert current["version"] == "v-night1"
    assert storage.get_json(current["manifest"])["counts"]["cvs"] == 1


def test_rollback_to_an_unknown_version_is_refused(storage, locations):
    promoted_version(storage, locations, "night1")
    with pytest.raises(LookupError, match="v-night1"):
        rollback_and_refresh("v-nope", locations, storage)
    assert read_production(storage, locations.registry).version == "v-night1"


def test_a_rollback_without_a_version_goes_back_to_the_one_production_replaced(storage, locations):
    """The rollback DAG's form triggers with its defaults: no version means the previous one."""
    with pytest.raises(LookupError, match="nothing to roll back to"):
        rollback_and_refresh(None, locations, storage, refresh=False)
    promoted_version(storage, locations, "night1")
    with pytest.raises(LookupError, match="nothing to roll back to"):
        rollback_and_refresh(None, locations, storage, refresh=False)
    promoted_version(storage, locations, "night2")
    rollback_and_refresh(None, locations, storage, refresh=False)
    assert read_production(storage, locations.registry).version == "v-night1"
