"""``make demo-approval``: new demo CVs and the base model back in production, as a recorded rollback."""

from include.devtools.second_night import BASE_VERSION, base_model_in_production, upload_second_batch
from include.matcher.foundations.pointers import read_current, read_production
from include.matcher.stages.registry import list_rollbacks
from tests.matcher.serving.test_search import promote_base_model_and_refresh


def test_a_second_batch_and_the_base_model_in_production_set_up_a_night_that_asks_for_approval(
    storage, locations, tmp_path
):
    promote_base_model_and_refresh(storage, locations)  # a first night's production (v-base)
    before = {info.uri for info in storage.list(locations.raw_cvs)}
    count = upload_second_batch(tmp_path / "second", locations, storage)
    added = {info.uri for info in storage.list(locations.raw_cvs)} - before
    assert count == len(added) > 0 and all("/demo2-" in uri for uri in added)  # new files: the night has work

    base_model_in_production(locations, storage)
    assert read_production(storage, locations.registry).version == BASE_VERSION
    assert read_current(storage, locations.embeddings)["version"] == BASE_VERSION  # search serves it at once
    assert [(r["from"], r["to"]) for r in list_rollbacks(storage, locations.registry)] == [("v-base", BASE_VERSION)]
    base_model_in_production(locations, storage)  # run again: nothing new
    assert len(list_rollbacks(storage, locations.registry)) == 1
