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
    storage.put_json(
        join_uri(locations.registry, "production.json"),
        {"version": "v1", "uri": version, "promoted_at": "2026-12-07T02:00:00"},
    )
    from_s3 = VectorMatcher(model_name=version, device="cpu")
    from_production = VectorMatcher(model_name="production", device="cpu", registry_uri=locations.registry)
    text = "Sous chef at a bistro"
    assert from_s3.encode([text]) == pytest.approx(matcher.encode([text]), abs=1e-5)
    assert from_production.encode([text]) == pytest.approx(matcher.encode([text]), abs=1e-5)


def test_unknown_model_name_is_a_clear_error():
    with pytest.raises(FileNotFoundError, match="neither"):
        VectorMatcher(model_name="/no/such/model")


def test_a_name_never_seen_does_not_move_a_candidate_in_vector_matcher(matcher):
    cv = "Summary\nSous chef: grill, sauces, ordering and a team of six.\nSkills\nFood safety"
    cvs = {
        "plain": cv,
        "top": "Chidinma Okafor\n" + cv,
        "contact": "zbigniew.wisniewski@example.com | +48 22 555 01 88\n" + cv,
        "closing": cv + "\nKind regards,\nTane Parata",
    }
    ranked = matcher.rank_candidates("Chef to run a restaurant kitchen", cvs)
    assert len({round(match.score, 6) for match in ranked}) == 1
    jobs = ["Chefs direct the cooking of food.", "Pilots fly airplanes.", "Nurses care for patients."]
    assert len({tuple(m.id for m in matcher.rank_jobs(text, jobs)) for text in cvs.values()}) == 1
