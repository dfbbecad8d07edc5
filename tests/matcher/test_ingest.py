from include.matcher.ingest import classify_key, ingest, record_trained
from include.matcher.parse import parse
from include.matcher.storage import join_uri


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
