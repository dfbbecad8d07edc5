"""The distributed tests run the real Celery topology (``make up-celery``): minutes each, so only
through ``make test-distributed`` (which sets MATCHER_DISTRIBUTED=1), never inside ``make test``."""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config, items):
    if os.environ.get("MATCHER_DISTRIBUTED") == "1":
        return
    skip = pytest.mark.skip(reason="the Celery topology tests run with `make test-distributed`")
    for item in items:
        if "tests/distributed/" in str(item.fspath):
            item.add_marker(skip)
