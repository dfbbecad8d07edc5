import pytest

from include.matcher.foundations.models import NotAModel, base_model_path, load_model, resolve_model
from include.matcher.foundations.uris import join_uri


def test_base_model_comes_from_the_installed_package():
    assert (
        resolve_model("all-MiniLM-L6-v2")
        == resolve_model("sentence-transformers/all-MiniLM-L6-v2")
        == base_model_path()
    )
    assert (base_model_path() / "model.safetensors").exists()


def test_pickled_weights_are_refused(tmp_path):
    """A model folder with only pytorch_model.bin (pickle) must not load: safetensors only."""
    import shutil

    import torch
    from safetensors.torch import load_file

    folder = tmp_path / "pickled"
    shutil.copytree(base_model_path(), folder)
    torch.save(load_file(folder / "model.safetensors"), folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()
    with pytest.raises(NotAModel, match="no .safetensors weights"):  # refused before anything is read
        load_model(str(folder), device="cpu")
    # A stray safetensors file elsewhere passes that check; loading still reads safetensors weights only.
    (folder / "1_Pooling" / "stray.safetensors").write_bytes(b"")
    with pytest.raises(OSError, match="no file named model.safetensors"):  # the pickle beside it is never read
        load_model(str(folder), device="cpu")


def test_what_is_not_a_model_is_refused_before_anything_is_fetched(storage, locations, monkeypatch, tmp_path):
    """``base_model`` pointed at the raw CVs once copied every CV onto the worker, at the registry root
    every version, and a crafted config took 4 GB: only a bounded sentence-transformers folder loads."""
    from include.matcher.foundations import models
    from include.matcher.foundations.settings import TrainingConfig

    monkeypatch.setenv("MATCHER_MODEL_CACHE", str(tmp_path / "cache"))
    for index in range(3):
        storage.put_bytes(join_uri(locations.raw_cvs, "HR", f"cv-{index}.txt"), b"a CV " * 50)
    registry_version = join_uri(locations.registry, "models", "v1")
    storage.upload_dir(base_model_path(), registry_version)
    huge = join_uri(locations.work, "huge-config")
    storage.upload_dir(base_model_path(), huge)
    storage.put_bytes(join_uri(huge, "config.json"), b" " * (models.MAX_JSON_BYTES + 1))
    many = join_uri(locations.work, "many-files")
    for index in range(models.MAX_MODEL_FILES + 1):
        storage.put_bytes(join_uri(many, f"f{index}"), b"")

    for uri, why in (
        (locations.raw_cvs, "no modules.json"),
        (locations.registry, "no modules.json"),
        (huge, "config.json is"),
        (many, "more than"),
    ):
        with pytest.raises(NotAModel, match=why):
            resolve_model(uri, storage)
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())  # nothing was downloaded
    assert (resolve_model(registry_version, storage) / "model.safetensors").exists()  # a real version loads

    with pytest.raises(ValueError, match="base_model must match"):
        TrainingConfig(base_model="s3://bucket/a model with spaces")
    with pytest.raises(ValueError, match="seed must be at most"):
        TrainingConfig(seed=1099511627776)


def _resolve_in_a_process(uri: str, environment: dict, results) -> None:
    import os

    os.environ.update(environment)
    try:
        results.put(str(resolve_model(uri)))
    except Exception as error:  # reported to the test, which fails on it
        results.put(f"error: {type(error).__name__}: {error}")


@pytest.mark.s3
def test_four_processes_resolving_one_model_at_once_all_get_it(storage, locations, tmp_path):
    """2-3 of 4 processes once crashed on ``...partial/model.safetensors``: each now downloads into a
    folder of its own and renames it into the cache; the losers use the winner's copy."""
    import multiprocessing
    import os

    uri = join_uri(locations.registry, "models", "v-race")
    storage.upload_dir(base_model_path(), uri)
    environment = {key: value for key, value in os.environ.items() if key.startswith(("AWS_", "MATCHER_"))}
    environment["MATCHER_MODEL_CACHE"] = str(tmp_path / "cache")
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    workers = [context.Process(target=_resolve_in_a_process, args=(uri, environment, results)) for _ in range(4)]
    for worker in workers:
        worker.start()
    answers = [results.get(timeout=300) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    assert len(set(answers)) == 1 and not answers[0].startswith("error"), answers
    assert (tmp_path / "cache").is_dir() and [p.name for p in (tmp_path / "cache").iterdir()] == [
        answers[0].rsplit("/", 1)[1]
    ]


def test_the_model_cache_keeps_the_most_recently_used_and_spares_one_in_use(storage, locations, monkeypatch, tmp_path):
    """One model a night: the cache once grew by 90 MB a day on every worker (and by 4 GB in a test
    session). A download prunes the least recently used beyond MATCHER_MODEL_CACHE_KEEP; one used in
    the last minutes may be about to load elsewhere and stays."""
    import os
    import time

    from include.matcher.foundations import models

    monkeypatch.setenv("MATCHER_MODEL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MATCHER_MODEL_CACHE_KEEP", "2")
    small = tmp_path / "small-model"  # modules.json and safetensors: what the cache and its checks look at
    small.mkdir()
    (small / "modules.json").write_text("[]")
    (small / "model.safetensors").write_bytes(b"weights")
    versions = [join_uri(locations.registry, "models", f"v{index}") for index in range(4)]
    for uri in versions:
        storage.upload_dir(small, uri)

    def age(folder, seconds):
        then = time.time() - seconds
        os.utime(folder, (then, then))

    first, second = (resolve_model(uri, storage) for uri in versions[:2])
    age(first, 3 * models.IN_USE_SECONDS)
    age(second, 2 * models.IN_USE_SECONDS)
    assert resolve_model(versions[0], storage) == first  # a hit is a use: v0 is now the most recent
    third = resolve_model(versions[2], storage)  # three models, keep two: v1, the least recently used, goes
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == sorted([first.name, third.name])

    fourth = resolve_model(versions[3], storage)  # v0 is beyond two but was used minutes ago: it stays
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == sorted([first.name, third.name, fourth.name])
    assert (resolve_model(versions[1], storage) / "modules.json").exists()  # a pruned model comes back on use


def test_reading_in_bf16_keeps_each_vector_where_fp32_puts_it():
    import numpy as np
    import torch

    texts = ["Sous chef: sauces, grill station, a brigade of six. " * 20, "Captain on A320 jets, 8,000 hours.", "x"]
    fp32 = load_model("all-MiniLM-L6-v2", device="cpu", precision="fp32")
    bf16 = load_model("all-MiniLM-L6-v2", device="cpu", precision="bf16")
    linears = {name.rsplit(".", 1)[-1]: m for name, m in bf16.named_modules() if isinstance(m, torch.nn.Linear)}
    assert linears["value"].weight.dtype == linears["dense"].weight.dtype == torch.bfloat16
    assert linears["query"].weight.dtype == linears["key"].weight.dtype == torch.float32  # attention logits
    assert all(p.dtype == torch.float32 for p in fp32.parameters())
    a = fp32.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    b = bf16.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    assert b.dtype == np.float32 and np.isfinite(b).all()
    assert (a * b).sum(axis=1).min() > 0.999  # cosine to the fp32 vector
    assert (a * b).sum(axis=1).min() < 1.0 - 1e-7  # and it is bf16 that read them


def test_auto_reads_in_bf16_only_where_the_hardware_does_it(monkeypatch):
    from include.matcher.foundations.models import PRECISION_IDS, encode_precision, fast_bf16
    from include.matcher.stages.embeddings import encoder_id

    monkeypatch.setenv("MATCHER_ENCODE_PRECISION", "auto")
    assert encode_precision() == ("bf16" if fast_bf16() else "fp32")
    for precision in ("fp32", "bf16"):
        monkeypatch.setenv("MATCHER_ENCODE_PRECISION", precision)
        assert encode_precision() == precision
        assert f"/torch-{PRECISION_IDS[precision]}/" in encoder_id()  # never reused across precisions


def test_training_keeps_fp32_whatever_the_reading_precision(tmp_path, monkeypatch):
    from safetensors import safe_open

    from include.matcher.foundations.settings import TrainingConfig
    from include.matcher.stages.pairs import build_examples
    from include.matcher.stages.training import train_model

    monkeypatch.setenv("MATCHER_ENCODE_PRECISION", "bf16")
    cvs = [
        {"key": "CHEF/a", "category": "CHEF", "text": "Grill cook"},
        {"key": "PILOT/b", "category": "PILOT", "text": "First officer"},
    ]
    jobs = {"CHEF": ["Cook."], "PILOT": ["Pilot."]}
    examples = build_examples(cvs, jobs, "multiple_negatives", 1.0, seed=1)
    out = train_model(
        examples.rows, examples.metadata, TrainingConfig(epochs=1, batch_size=2, max_seq_length=32), tmp_path / "m"
    )
    with safe_open(str(out / "model.safetensors"), "pt") as weights:
        assert {str(weights.get_tensor(name).dtype) for name in weights.keys()} == {"torch.float32"}  # noqa: SIM118
