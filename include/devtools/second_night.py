"""``make demo-approval``: a second night on the demo data that asks a person to approve its promotion.

After ``make demo`` production is the model the first night trained, and a second night on the same
kind of data rarely beats it beyond doubt: its gate refuses, and nobody is ever asked. This puts the
demo where the first night stood instead: a second batch of demo CVs in the raw prefix (new files,
so the night has new work), and the packaged base model back in production as registry version
``v-base-model`` (a rollback, recorded and re-embedded like any other), so the next night's candidate
is judged against the base model, as the first night's was. With ``make up`` (approval required by
default) a night triggered with the defaults then waits in Airflow's Required actions.
"""

from __future__ import annotations

import random
import sys
from datetime import UTC, datetime
from pathlib import Path

from include.matcher.foundations import layout
from include.matcher.foundations.pointers import RegistryEntry
from include.matcher.foundations.settings import Locations
from include.matcher.foundations.storage import ObjectStore

BASE_VERSION = "v-base-model"


def write_second_batch(target: Path, cvs_per_category: int = 40, seed: int = 8) -> list[Path]:
    """New demo CVs (``demo2-*``: names the first batch does not use) under ``<target>/<CATEGORY>/``."""
    from include.devtools.demo_data import PROFILES, RENDERERS, cv_text

    rng = random.Random(seed)
    written = []
    for category in PROFILES:
        folder = target / category
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(cvs_per_category):
            extension = list(RENDERERS)[index % len(RENDERERS)]
            path = folder / f"demo2-{category.lower()}-{index:03d}{extension}"
            path.write_bytes(RENDERERS[extension](cv_text(category, rng)))
            written.append(path)
    return written


def upload_second_batch(target: Path, locations: Locations, storage: ObjectStore) -> int:
    from include.matcher.foundations.uris import join_uri

    files = write_second_batch(target)
    for path in files:
        storage.put_bytes(join_uri(locations.raw_cvs, path.parent.name, path.name), path.read_bytes())
    return len(files)


def base_model_in_production(locations: Locations, storage: ObjectStore) -> str:
    """The packaged base model as registry version ``v-base-model``, rolled back to (and re-embedded with)."""
    from include.matcher.foundations.models import base_model_path
    from include.matcher.stages.operations import rollback_and_refresh

    version = layout.version(locations.registry, BASE_VERSION)
    if not storage.exists(version.entry):
        storage.upload_dir(base_model_path(), version.uri)
        entry = RegistryEntry.written(
            {
                "version": BASE_VERSION,
                "uri": version.uri,
                "promoted_at": datetime.now(UTC).isoformat(),
                "metrics": {},
                "previous": None,
                "note": "the packaged base model, for the approval demo (make demo-approval)",
            }
        )
        storage.put_json(version.entry, entry.to_json(), if_none_match=True)
    return rollback_and_refresh(BASE_VERSION, locations, storage)


def main() -> int:
    from include.matcher.foundations.storage import Storage

    locations, storage = Locations.from_env(), Storage()
    count = upload_second_batch(Path("demo-data/second-batch"), locations, storage)
    base_model_in_production(locations, storage)
    print(
        f"uploaded {count} demo CVs to {locations.raw_cvs}; production is the base model again ({BASE_VERSION}).\n"
        "Next: make up, open http://localhost:8080, DAGs > matcher_retraining > Trigger (defaults) > Trigger.\n"
        "The run waits at `approve`: Browse > Required actions (or the Matcher page's 'answer it' link).",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
