"""What the Matcher page serves live, cached on the API server: production's model, the side-by-side view."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

_matchers: dict[tuple, object] = {}
_side_by_side = None


def production_matches(query: str, storage, locations, k: int = 10, user: str | None = None):
    """Production's top stored candidates for ``query``; the model is loaded once per production version."""
    from include.matcher.foundations.pointers import read_production
    from include.matcher.serving.matcher import VectorMatcher

    pointer = read_production(storage, locations.registry)
    if pointer is None:
        raise LookupError("no model is in production yet")
    # Keyed by where it reads too: a version name alone is the same in another registry (a bucket
    # re-created, the server pointed elsewhere), whose matcher would read a store that is not there.
    key = (locations.registry, locations.embeddings, locations.work, pointer["version"], pointer["uri"])
    if key not in _matchers:
        _matchers.clear()
        _matchers[key] = VectorMatcher.at(locations, storage)
    return _matchers[key].top_candidates(query, k=k, user=user)


def challenger_comparison(query: str, storage, locations, k: int = 10, user: str | None = None) -> str:
    """The side-by-side table of production and the latest candidate, when that candidate is not production."""
    global _side_by_side
    from include.matcher.foundations.pointers import read_production
    from include.matcher.pages.dashboard import run_reports, side_by_side_table, side_by_side_unavailable
    from include.matcher.serving.comparison import SideBySide, latest_challenger

    production = read_production(storage, locations.registry)
    challenger = latest_challenger(run_reports(storage, locations)[0], production and production["version"])
    if challenger is None:
        return ""
    if _side_by_side is None:
        _side_by_side = SideBySide(storage)
    try:
        ranked = _side_by_side.rank(challenger, query, k, user=user, locations=locations)
    except Exception as error:  # the view is optional: a deleted or damaged vectors file must not take the page
        log.warning("side-by-side view unavailable for %s: %s", challenger.run, error)
        return side_by_side_unavailable(challenger)
    return side_by_side_table(challenger, ranked)
