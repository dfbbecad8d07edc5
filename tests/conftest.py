"""Shared fixtures: a real SeaweedFS S3 server, isolated buckets, the shared data folder; the test tiers.

Airflow reads its configuration when first imported, so its environment is set here, before any
test module imports it: a throwaway AIRFLOW_HOME with SQLite, this project's dags folder.

Each test is marked by what it needs (:data:`NEEDS`), from the fixtures it asks for or by hand:
``s3`` a real S3 server, ``model`` a SentenceTransformer loaded or trained, ``airflow`` Airflow's
database or a DAG run, ``browser`` Chromium. ``make test`` runs them all. ``make test-fast`` runs
the rest with ``MATCHER_TEST_STORE=memory``: the ``storage`` fixture is then a
:class:`~include.matcher.foundations.memory_storage.MemoryStorage` instead of SeaweedFS, and the
environment points at a closed port, so code that reaches for S3 past the fixture fails at once.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest

from tests.helpers import PROJECT_ROOT

if __name__ != "conftest":  # a second import would give Airflow a new AIRFLOW_HOME mid-session
    raise ImportError("import shared test helpers from tests.helpers, never from conftest")
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"

# "memory" (make test-fast): the storage fixture is in memory and no test needs the S3 server.
TEST_STORE = os.environ.get("MATCHER_TEST_STORE", "s3")
if TEST_STORE not in {"s3", "memory"}:
    raise ValueError(f"MATCHER_TEST_STORE={TEST_STORE!r}: expected s3 or memory")

# Marker -> the fixtures that imply it: a test asking for one (directly or through another fixture)
# is marked without saying so. Tests that need a thing no fixture gives carry the marker themselves.
NEEDS = {
    "s3": {"s3_server", "cli_env", "own_server", "version_uri"},
    "model": {"base_model", "short_reader", "matcher", "night", "pipeline", "airflow_server", "api_server"},
    "airflow": {"airflow_db", "dag_bag", "pipeline", "airflow_server", "api_server", "topology"},
    "browser": {"browser"},
}

# A test session needs this much free disk where its temporary folders go (the embedded S3's volumes,
# model copies, checkpoints; measured peak in README "Tests"). Below it, a night's writes fail with
# 5xx answers that S3 retries ride out for minutes each: stop at once and say why instead.
MIN_FREE_DISK_GB = 6

_AIRFLOW_HOME = tempfile.mkdtemp(prefix="matcher-test-airflow-")
_MODEL_CACHE = tempfile.mkdtemp(prefix="matcher-test-models-")
for _folder in (_AIRFLOW_HOME, _MODEL_CACHE):  # outside pytest's tmp_path: removed here, pass or fail
    atexit.register(shutil.rmtree, _folder, ignore_errors=True)
os.environ.update(
    {
        "AIRFLOW_HOME": _AIRFLOW_HOME,
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "MATCHER_MODEL_CACHE": _MODEL_CACHE,
        # A broken server fails a test in seconds, not after two minutes of retries per operation;
        # still long enough for the restarts that tests/matcher/test_s3_faults.py rides out.
        "MATCHER_S3_RETRY_SECONDS": "30",
        # Unattended, like `make demo`: tests that exercise the approval ask for it per run.
        "MATCHER_REQUIRE_APPROVAL": "false",
        # Tests compare vectors across runtimes (torch, ONNX) to 1e-4, which only fp32 keeps; the bf16
        # reading has tests of its own (tests/matcher/foundations/test_models.py, test_reading_alike.py).
        "MATCHER_ENCODE_PRECISION": "fp32",
    }
)
if TEST_STORE == "memory":
    # Nothing listens on port 9: a Storage() built outside the fixture fails in well under a second.
    os.environ.update(
        {
            "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9",
            "AWS_ACCESS_KEY_ID": "fast-tier",
            "AWS_SECRET_ACCESS_KEY": "fast-tier",
            "MATCHER_S3_RETRY_SECONDS": "0",
        }
    )


def pytest_collection_modifyitems(config, items):
    for item in items:
        needed = {marker for marker, fixtures in NEEDS.items() if fixtures & set(getattr(item, "fixturenames", ()))}
        if item.get_closest_marker("integration"):
            needed |= {"s3", "airflow", "model"}
        for marker in needed - {m.name for m in item.iter_markers()}:
            item.add_marker(getattr(pytest.mark, marker))


def pytest_sessionstart(session):
    free_gb = shutil.disk_usage(tempfile.gettempdir()).free / 1024**3
    if free_gb < MIN_FREE_DISK_GB:
        pytest.exit(
            f"only {free_gb:.1f} GB free under {tempfile.gettempdir()}; the tests need {MIN_FREE_DISK_GB} GB "
            "(the embedded S3, model copies, checkpoints): free some disk or point TMPDIR elsewhere",
            returncode=3,
        )


@pytest.fixture(scope="session")
def airflow_db():
    """The session's Airflow metadata database (SQLite in the throwaway AIRFLOW_HOME), migrated once."""
    import subprocess
    import sys

    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        capture_output=True,
        env=os.environ.copy(),
        timeout=600,
    )


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """A real SeaweedFS ``weed mini`` on free loopback ports, with keys, for the whole session."""
    from include.devtools import embedded_s3

    data_dir = tmp_path_factory.mktemp("seaweedfs")
    server = embedded_s3.start(data_dir, s3_port=embedded_s3.free_port(), base_port=None)
    previous = {key: os.environ.get(key) for key in server.environment()}
    os.environ.update(server.environment())
    yield server
    embedded_s3.stop(data_dir)
    for key, value in previous.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def storage(request):
    """The test's object store: SeaweedFS (``make test``) or, under ``make test-fast``, memory."""
    if TEST_STORE == "memory":
        from include.matcher.foundations.memory_storage import MemoryStorage

        return MemoryStorage()
    request.getfixturevalue("s3_server")
    from include.matcher.foundations.storage import Storage

    return Storage()


@pytest.fixture
def locations(storage):
    """Pipeline locations in a fresh bucket, so tests never see each other's objects."""
    from include.matcher.foundations.settings import Locations
    from tests.helpers import remove_buckets

    bucket = f"test-{uuid.uuid4().hex[:12]}"
    storage.ensure_bucket(bucket)
    locations = Locations(
        raw_cvs=f"s3://{bucket}/raw/cvs",
        jobs_file=f"s3://{bucket}/raw/job_descriptions.json",
        job_offers=f"s3://{bucket}/raw/job-offers",
        work=f"s3://{bucket}/work",
        registry=f"s3://{bucket}/registry",
        embeddings=f"s3://{bucket}/embeddings",
    )
    yield locations
    remove_buckets(storage, locations)  # the embedded S3 frees a bucket's volumes only when it goes


@pytest.fixture
def cli_env(locations) -> dict[str, str]:
    """The environment a CLI subprocess needs to act on this test's bucket."""
    from tests.helpers import PROJECT_ROOT

    return {
        **os.environ,
        "PYTHONPATH": str(PROJECT_ROOT),
        **{var: getattr(locations, name) for name, var in locations.ENV.items()},
    }


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}: tests on real resumes are skipped")
    return SHARED_DATA


@pytest.fixture(scope="session")
def demo_folder(tmp_path_factory) -> Path:
    """Generated demo data: 5 categories x 6 CVs in PDF, DOCX and TXT, plus broken files."""
    from include.devtools.demo_data import generate

    target = tmp_path_factory.mktemp("demo")
    generate(target, cvs_per_category=6)
    return target


@pytest.fixture(scope="session")
def demo_night_folder(tmp_path_factory) -> Path:
    """What ``make demo`` uploads: 5 categories x 16 CVs plus broken files, enough held-out CVs to judge."""
    from include.devtools.demo_data import generate

    target = tmp_path_factory.mktemp("demo-night")
    generate(target, cvs_per_category=16)
    return target


@pytest.fixture(scope="session")
def base_model():
    from include.matcher.foundations.models import load_model

    return load_model("all-MiniLM-L6-v2", device="cpu")
