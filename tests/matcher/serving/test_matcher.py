import pytest

from include.matcher import VectorMatcher
from include.matcher.foundations.models import resolve_model
from include.matcher.foundations.uris import join_uri

JOBS = {
    "chef": "Cook preparing meals in a restaurant kitchen.",
    "pilot": "Pilot flying commercial aircraft.",
    "nurse": "Nurse caring for hospital patients.",
}


@pytest.fixture(scope="module")
def matcher():
    return VectorMatcher(model_name="all-MiniLM-L6-v2", device="cpu")


def test_rank_jobs_for_a_cv(matcher):
    ranked = matcher.rank_jobs("Captain on Boeing 737, 8,000 flight hours", JOBS)
    assert ranked[0].id == "pilot"
    assert [m.score for m in ranked] == sorted((m.score for m in ranked), reverse=True)


def test_rank_candidates_for_a_job(matcher):
    cvs = ["ICU nurse on night shifts", "Sous chef at a bistro", "Airline first officer"]
    top = matcher.rank_candidates(JOBS["chef"], cvs, top_k=1)
    assert [m.id for m in top] == ["1"]


def test_model_name_accepts_s3_uri_and_production(storage, locations, matcher):
    base = resolve_model("all-MiniLM-L6-v2")
    version = join_uri(locations.registry, "models", "v1")
    storage.upload_dir(base, version)
    storage.put_json(join_uri(locations.registry, "production.json"), {"version": "v1", "uri": version})
    from_s3 = VectorMatcher(model_name=version, device="cpu")
    from_production = VectorMatcher(model_name="production", device="cpu", registry_uri=locations.registry)
    text = "Sous chef at a bistro"
    assert from_s3.encode([text]) == pytest.approx(matcher.encode([text]), abs=1e-5)
    assert from_production.encode([text]) == pytest.approx(matcher.encode([text]), abs=1e-5)


def test_unknown_model_name_is_a_clear_error():
    with pytest.raises(FileNotFoundError, match="neither"):
        VectorMatcher(model_name="/no/such/model")
