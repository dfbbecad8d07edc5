"""Operator actions outside the nightly flow: rolling production back to an earlier version."""

from __future__ import annotations

from datetime import UTC, datetime

from include.matcher.foundations import layout
from include.matcher.foundations.settings import Locations
from include.matcher.foundations.storage import ObjectStore
from include.matcher.stages.corpus import read_ledger, write_corpus_snapshot
from include.matcher.stages.embeddings import refresh_embeddings
from include.matcher.stages.registry import rollback


def current_corpus(locations: Locations, storage: ObjectStore, label: str) -> str:
    """A corpus snapshot of every parsed CV the ledger knows, under ``<work>/operations/<label>/``."""
    ledger, _ = read_ledger(storage, locations)
    uri = layout.operations_corpus(locations.work, label)
    write_corpus_snapshot(ledger, uri, storage)
    return uri


def rollback_and_refresh(version: str | None, locations: Locations, storage: ObjectStore, refresh: bool = True) -> str:
    """Repoint production at ``version`` (None: the version production replaced) and re-embed the
    corpus with it; returns the version URI."""
    if not version:
        from include.matcher.foundations.pointers import read_production

        production = read_production(storage, locations.registry)
        version = production.previous if production else None
        if not version:
            raise LookupError("nothing to roll back to: production replaced no earlier version; give a version")
    version_uri = rollback(version, locations.registry, storage)
    if refresh:
        label = f"rollback-{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{version}"
        refresh_embeddings(version_uri, current_corpus(locations, storage, label), locations, storage)
    return version_uri
