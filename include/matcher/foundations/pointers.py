"""The pipeline's pointers: small JSON objects that name what is live, changed only by compare-and-swap.

``<registry>/production.json`` names the model in production, ``<embeddings>/current.json`` the
snapshot search serves. Readers follow them; writers replace them with a conditional write
(:func:`swap_pointer`), so of two concurrent writers one wins and the other fails loudly.
"""

from __future__ import annotations

import json

from include.matcher.foundations import layout
from include.matcher.foundations.storage import ObjectStore, PreconditionFailed


def read_production(storage: ObjectStore, registry_uri: str) -> dict | None:
    found = storage.get_with_etag(layout.production_pointer(registry_uri))
    return None if found is None else json.loads(found[0])


def swap_pointer(storage: ObjectStore, uri: str, value: dict, expected: dict | None) -> str:
    """Replace the JSON pointer at ``uri`` only if it still holds ``expected`` (None: absent)."""
    found = storage.get_with_etag(uri)
    if expected is None:
        if found is not None:
            raise PreconditionFailed(f"{uri} appeared concurrently")
        return storage.put_json(uri, value, if_none_match=True)
    if found is None or json.loads(found[0]) != expected:
        raise PreconditionFailed(f"{uri} changed since it was read")
    return storage.put_json(uri, value, if_match=found[1])


def read_current(storage: ObjectStore, embeddings_uri: str) -> dict | None:
    found = storage.get_with_etag(layout.current_embeddings(embeddings_uri))
    return None if found is None else json.loads(found[0])
