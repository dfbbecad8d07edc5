from include.matcher.foundations.uris import join_uri
from include.matcher.stages.corpus import record_trained
from include.matcher.stages.ingest import classify_key, ingest
from include.matcher.stages.parse import parse


def put(storage, locations, key, body=b"x" * 200):
    storage.put_bytes(join_uri(locations.raw_cvs, key), body)


def test_classify_key():
    assert classify_key("HR/cv1.pdf") == ("HR", None)
    assert classify_key("cv1.pdf") == (None, "outside_layout")
    assert classify_key("HR/deep/cv1.pdf") == (None, "outside_layout")
    assert classify_key("HR/cv1.png") == (None, "unsupported_type")
    assert classify_key("HR/.DS_Store") == (None, "hidden_file")


def test_manifest_lists_new_files_and_reports_the_rest(storage, locations):
    storage.put_json(locations.jobs_file, {"HR": "hr job"})
    put(storage, locations, "HR/a.txt", b"HR generalist " * 20)
    put(storage, locations, "HR/b.png")
    put(storage, locations, "loose.txt")
    manifest = storage.get_json(ingest(join_uri(locations.work, "runs", "r1"), locations, storage))
    assert [i["key"].rsplit("/", 2)[-2:] for i in manifest["items"]] == [["HR", "a.txt"]]
    assert manifest["items"][0]["category"] == "HR"
    assert sorted(s["reason"] for s in manifest["skipped"]) == ["outside_layout", "unsupported_type"]
    assert manifest["has_work"] and manifest["jobs_file"]["changed"]


def test_second_night_ingests_only_new_or_changed(storage, locations):
    storage.put_json(locations.jobs_file, {"HR": "hr job"})
    put(storage, locations, "HR/a.txt", b"HR generalist, recruiting and onboarding. " * 5)
    put(storage, locations, "HR/b.txt", b"HR partner, benefits and employee relations. " * 5)
    run1 = join_uri(locations.work, "runs", "r1")
    parse(ingest(run1, locations, storage), run1, locations, storage)
    record_trained(run1, locations, storage, "promoted")  # night 1 finished: trained and judged

    run2 = join_uri(locations.work, "runs", "r2")
    quiet = storage.get_json(ingest(run2, locations, storage))
    assert quiet["items"] == [] and not quiet["has_work"]
    assert quiet["counts"]["already_ingested"] == 2

    put(storage, locations, "HR/b.txt", b"HR partner, rewritten CV with payroll experience. " * 5)
    put(storage, locations, "HR/c.txt", b"Recruiter sourcing engineers and sales people. " * 5)
    storage.delete(join_uri(locations.raw_cvs, "HR/a.txt"))
    busy = storage.get_json(ingest(join_uri(locations.work, "runs", "r3"), locations, storage))
    assert {i["key"].rsplit("/", 1)[1]: i["change"] for i in busy["items"]} == {"b.txt": "changed", "c.txt": "new"}
    assert [k.rsplit("/", 1)[1] for k in busy["removed"]] == ["a.txt"]


def test_force_makes_a_quiet_night_retrain(storage, locations):
    storage.put_json(locations.jobs_file, {"HR": "hr job"})
    run1 = join_uri(locations.work, "runs", "r1")
    parse(ingest(run1, locations, storage), run1, locations, storage)
    assert not storage.get_json(ingest(join_uri(locations.work, "runs", "r2"), locations, storage))["has_work"]
    assert storage.get_json(ingest(join_uri(locations.work, "runs", "r3"), locations, storage, force=True))["has_work"]


MAIN_CVS = {
    "CHEF/grill.txt": "Grill cook: steaks, sauces and a busy brasserie kitchen line; menu costing and ordering. " * 2,
    "CHEF/pastry.txt": "Pastry chef baking bread, croissants and plated desserts for a hotel restaurant. " * 2,
    "PILOT/captain.txt": "Airline captain with 6,000 flight hours on Airbus A320 jets; crew resource management. " * 2,
    "PILOT/heli.txt": "Helicopter pilot flying offshore transfers and medical evacuation missions at night. " * 2,
}
TRIAL_CVS = {
    "CHEF/trial-sous.txt": "Sous chef running a twelve-cover tasting menu kitchen, sourcing from local farms. " * 2,
    "PILOT/trial-cargo.txt": "Cargo pilot on Boeing 767 freighters, long-haul night operations and planning. " * 2,
}


def test_a_run_on_a_sub_prefix_leaves_the_ledger_and_search_of_the_rest_intact(storage, locations, monkeypatch):
    """A trial run (``raw_prefix`` on another folder) once took every CV outside it for removed: the
    ledger shrank to the trial's files and search lost everyone else. It must see only its prefix, and
    leave the production embeddings alone unless told to publish."""
    from include.matcher.foundations.settings import PipelineConfig
    from include.matcher.stages.corpus import read_ledger
    from include.matcher.stages.embeddings import plan_production_refresh, refresh_embeddings
    from tests.helpers import read_cv_vectors
    from tests.matcher.serving.test_search import put_base_model_in_production

    for name, var in locations.ENV.items():
        monkeypatch.setenv(var, getattr(locations, name))
    trial_prefix = join_uri(locations.raw_cvs.rsplit("/", 1)[0], "trial-batch")
    for key, text in MAIN_CVS.items():
        storage.put_bytes(join_uri(locations.raw_cvs, key), text.encode())
    for key, text in TRIAL_CVS.items():
        storage.put_bytes(join_uri(trial_prefix, key), text.encode())
    storage.put_json(locations.jobs_file, {"CHEF": "Cook in a restaurant kitchen.", "PILOT": "Pilot flying aircraft."})

    night = locations.run_uri("night-1")
    corpus = parse(ingest(night, locations, storage), night, locations, storage)
    version_uri = put_base_model_in_production(storage, locations)
    refresh_embeddings(version_uri, corpus, locations, storage)

    trial = PipelineConfig(locations=locations).with_params({"raw_prefix": trial_prefix})
    trial_run = trial.locations.run_uri("trial-1")
    manifest = storage.get_json(ingest(trial_run, trial.locations, storage))
    assert manifest["removed"] == [] and manifest["counts"]["new"] == 2
    trial_corpus = parse(join_uri(trial_run, "manifest.json"), trial_run, trial.locations, storage)
    ledger, _ = read_ledger(storage, locations)
    assert len(ledger["objects"]) == 6  # the trial's two added, none of the four taken away

    assert not trial.publishes_embeddings
    assert plan_production_refresh(trial_corpus, trial.locations, storage, publish=trial.publishes_embeddings) == []
    served = sorted(key.rsplit("/", 2)[-2] + "/" + key.rsplit("/", 1)[-1] for key in _served(storage, locations))
    assert served == sorted(MAIN_CVS)

    # Back on the deployment's prefix: the trial's files are not its to remove either.
    again = storage.get_json(ingest(locations.run_uri("night-2"), locations, storage))
    assert again["removed"] == [] and not again["items"]
    assert trial.with_params({"publish_from_other_prefix": True}).publishes_embeddings
    assert PipelineConfig(locations=locations).publishes_embeddings
    assert read_cv_vectors(storage, locations.embeddings).num_rows == 4


def _served(storage, locations) -> list[str]:
    from include.matcher.serving.matcher import VectorMatcher

    matcher = VectorMatcher(model_name="production", storage=storage, device="cpu")
    return [hit.id for hit in matcher.top_candidates("Cook or pilot", k=20)]
