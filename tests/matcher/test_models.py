import pytest

from include.matcher.models import base_model_path, load_model, resolve_model


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
    with pytest.raises(OSError, match="no file named model.safetensors"):  # the pickle beside it is never read
        load_model(str(folder), device="cpu")
