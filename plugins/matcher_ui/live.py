"""What the Matcher page serves live, cached on the API server: production's model (loaded in the
background as soon as the page is opened), the side-by-side view, the versions compared."""

from __future__ import annotations

import logging
import threading

log = logging.getLogger(__name__)

_matchers: dict[tuple, object] = {}
_matchers_lock = threading.Lock()
_warming: set[tuple] = set()
_side_by_side = None
_versions = None


def _production_key(storage, locations):
    from include.matcher.foundations.pointers import read_production

    pointer = read_production(storage, locations.registry)
    if pointer is None:
        return None
    # Keyed by where it reads too: a version name alone is the same in another registry (a bucket
    # re-created, the server pointed elsewhere), whose matcher would read a store that is not there.
    return (locations.registry, locations.embeddings, locations.work, pointer.version, pointer.uri)


def _matcher_for(key, storage, locations):
    from include.matcher.serving.matcher import VectorMatcher

    with _matchers_lock:
        if key not in _matchers:
            _matchers.clear()
            _matchers[key] = VectorMatcher.at(locations, storage)
        return _matchers[key]


def production_loaded(storage, locations) -> bool:
    """Whether production's model is loaded; if not, start loading it now (the first search then finds it ready)."""
    key = _production_key(storage, locations)
    if key is None or key in _matchers:
        return True
    if key not in _warming:
        _warming.add(key)

        def warm():
            try:
                _matcher_for(key, storage, locations).model.encode(["warm-up"], show_progress_bar=False)
            except Exception:  # a search will say what is wrong; the page must not
                log.warning("could not load production's model ahead of a search", exc_info=True)
            finally:
                _warming.discard(key)

        threading.Thread(target=warm, name="matcher-warm-up", daemon=True).start()
    return False


def production_matches(query: str, storage, locations, k: int = 10, user: str | None = None):
    """Production's top stored candidates for ``query``; the model is loaded once per production version."""
    key = _production_key(storage, locations)
    if key is None:
        raise LookupError("no model is in production yet")
    return _matcher_for(key, storage, locations).top_candidates(query, k=k, user=user)


def challenger_comparison(query: str, storage, locations, k: int = 10, user: str | None = None):
    """The side-by-side view of production and the latest candidate, when that candidate is not production."""
    global _side_by_side
    from include.matcher.foundations.pointers import read_production
    from include.matcher.pages.dashboard import SideBySideView, run_reports
    from include.matcher.serving.comparison import SideBySide, latest_challenger

    production = read_production(storage, locations.registry)
    challenger = latest_challenger(run_reports(storage, locations)[0], production and production.version)
    if challenger is None:
        return None
    if _side_by_side is None:
        _side_by_side = SideBySide(storage)
    try:
        ranked = _side_by_side.rank(challenger, query, k, user=user, locations=locations)
    except Exception as error:  # the view is optional: a deleted or damaged vectors file must not take the page
        log.warning("side-by-side view unavailable for %s: %s", challenger.run, error)
        return SideBySideView(challenger)
    return SideBySideView(challenger, ranked)


def version_comparison(storage):
    global _versions
    from include.matcher.serving.comparison import VersionComparison

    if _versions is None:  # one per server: a version's reading of a pool is reused across requests
        _versions = VersionComparison(storage)
    return _versions
