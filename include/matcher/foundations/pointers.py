"""The pipeline's pointers: small JSON objects that name what is live, changed only by compare-and-swap.

``<registry>/production.json`` names the model in production (a :class:`RegistryEntry`, the same
record as the version's own ``entry.json``), ``<embeddings>/current.json`` the snapshot search serves.
Readers follow them; writers replace them with a conditional write (:func:`swap_pointer`), so of two
concurrent writers one wins and the other fails loudly.
"""

from __future__ import annotations

import json

from include.matcher.foundations import layout
from include.matcher.foundations.records import Number, Record
from include.matcher.foundations.storage import MissingObject, ObjectStore, PreconditionFailed


class RegistryEntry(Record):
    """A promoted version: what its ``entry.json`` keeps and ``production.json`` points at (the DAG's
    asset event carries it too). A rollback points production at an earlier entry, restamped."""

    record_name = "registry entry"

    version: str
    uri: str
    promoted_at: str
    metrics: dict[str, Number] = {}
    previous: str | None = None
    run: str | None = None
    primary_metric: str | None = None
    report: str | None = None
    rolled_back_from: str | None = None
    note: str | None = None  # why a version was registered by hand (the approval demo's base model)


def read_production(storage: ObjectStore, registry_uri: str) -> RegistryEntry | None:
    """The entry of the version in production; None before the first promotion."""
    found = storage.get_with_etag(layout.production_pointer(registry_uri))
    return None if found is None else RegistryEntry.load(found[0])


def read_entry(storage: ObjectStore, version_uri: str) -> RegistryEntry | None:
    """The registry entry of the version at ``version_uri``; None where it was never promoted."""
    found = storage.get_with_etag(layout.Model(version_uri).entry)
    return None if found is None else RegistryEntry.load(found[0])


def promoted_entry(storage: ObjectStore, version_uri: str) -> RegistryEntry:
    """:func:`read_entry` of a version that must have been promoted (:class:`MissingObject` if not)."""
    entry = read_entry(storage, version_uri)
    if entry is None:
        raise MissingObject(f"no registry entry at {layout.Model(version_uri).entry}: not a promoted version")
    return entry


def swap_pointer(storage: ObjectStore, uri: str, value: Record | dict, expected: Record | dict | None) -> str:
    """Replace the JSON pointer at ``uri`` only if it still holds ``expected`` (None: absent)."""
    value, expected = _as_json(value), _as_json(expected)
    found = storage.get_with_etag(uri)
    if expected is None:
        if found is not None:
            raise PreconditionFailed(f"{uri} appeared concurrently")
        return storage.put_json(uri, value, if_none_match=True)
    if found is None or json.loads(found[0]) != expected:
        raise PreconditionFailed(f"{uri} changed since it was read")
    return storage.put_json(uri, value, if_match=found[1])


def _as_json(value: Record | dict | None) -> dict | None:
    return value.to_json() if isinstance(value, Record) else value


def read_current(storage: ObjectStore, embeddings_uri: str) -> dict | None:
    found = storage.get_with_etag(layout.current_embeddings(embeddings_uri))
    return None if found is None else json.loads(found[0])
