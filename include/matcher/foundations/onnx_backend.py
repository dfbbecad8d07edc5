"""An ONNX Runtime encoder for the embedding refresh: exported once per model version, stored with it.

sentence-transformers' own ``backend="onnx"`` needs optimum-onnx, which cannot be installed beside
sentence-transformers 6.2 (it pins an older transformers). So the transformer is exported here with
``torch.onnx.export``, fused by ONNX Runtime's BERT optimizer, optionally int8-quantised with ONNX Runtime's dynamic
quantisation, and run by :class:`OnnxEncoder`, which repeats what the SentenceTransformer modules do
(tokenise to ``max_seq_length``, mean-pool over the attention mask, L2-normalise). The exported
files live beside the weights, ``<version>/onnx/model.onnx`` and ``model_qint8.onnx``, so every
worker downloads them instead of exporting again.

``MATCHER_EMBED_BACKEND``: ``torch`` (default), ``onnx`` or ``onnx-int8``.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from pathlib import Path

import numpy as np

from include.matcher.foundations.settings import deployment_setting

log = logging.getLogger(__name__)

BACKENDS = ("torch", "onnx", "onnx-int8")
FILES = {"onnx": "model.onnx", "onnx-int8": "model_qint8.onnx"}
INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def embed_backend() -> str:
    backend = deployment_setting("MATCHER_EMBED_BACKEND")
    if backend not in BACKENDS:
        raise ValueError(f"MATCHER_EMBED_BACKEND must be one of {BACKENDS}, not {backend!r}")
    return backend


def _check_pipeline(model_dir: Path) -> None:
    """Only Transformer -> mean Pooling (-> Normalize) models are repeated faithfully by OnnxEncoder."""
    modules = [module["type"].rsplit(".", 1)[-1] for module in json.loads((model_dir / "modules.json").read_text())]
    pooling = json.loads((model_dir / "1_Pooling" / "config.json").read_text())
    # sentence-transformers 6 saves `pooling_mode: mean` (every fine-tuned model); older folders, the
    # packaged base model among them, `pooling_mode_mean_tokens: true`.
    mean = pooling.get("pooling_mode") in ("mean", ["mean"]) or (
        "pooling_mode" not in pooling
        and pooling.get("pooling_mode_mean_tokens")
        and not any(
            pooling.get(f"pooling_mode_{other}") for other in ("cls_token", "max_tokens", "mean_sqrt_len_tokens")
        )
    )
    if modules[:2] != ["Transformer", "Pooling"] or not mean or set(modules[2:]) - {"Normalize"}:
        raise ValueError(
            f"ONNX export supports Transformer + mean Pooling (+ Normalize) models, not {modules} with {pooling}"
        )


def export_onnx(model_dir: str | Path, quantize: bool = True) -> list[Path]:
    """Export ``model_dir``'s transformer to ``<model_dir>/onnx/``; the files written."""
    import torch
    from onnxruntime.transformers import optimizer
    from transformers import AutoModel, AutoTokenizer

    from include.matcher.foundations.onnx_graph import LastHiddenState

    model_dir = Path(model_dir)
    _check_pipeline(model_dir)
    target = model_dir / "onnx"
    target.mkdir(exist_ok=True)
    # Eager attention and the TorchScript exporter: ONNX Runtime's BERT optimizer fuses that graph's
    # attention, layer norms and GELU into single kernels (the dynamo exporter's graph matches none of
    # its attention patterns and ran slower than torch), exact to fp32 (max difference < 1e-4).
    transformer = AutoModel.from_pretrained(model_dir, use_safetensors=True, attn_implementation="eager").eval()

    sample = AutoTokenizer.from_pretrained(model_dir)(
        ["an example CV", "a somewhat longer example job description"], padding=True, return_tensors="pt"
    )
    unfused = target / "unfused.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice, on every export
        torch.onnx.export(
            LastHiddenState(transformer).eval(),
            tuple(sample[name] for name in INPUTS),
            str(unfused),
            input_names=list(INPUTS),
            output_names=["last_hidden_state"],
            dynamic_axes={name: {0: "batch", 1: "sequence"} for name in INPUTS},
            opset_version=17,
            dynamo=False,
        )
    fused = optimizer.optimize_model(
        str(unfused),
        model_type="bert",
        num_heads=transformer.config.num_attention_heads,
        hidden_size=transformer.config.hidden_size,
    )
    fused.save_model_to_file(str(target / FILES["onnx"]))
    unfused.unlink()
    written = [target / FILES["onnx"]]
    if quantize:
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic

        # Per-channel scales with a 7-bit range keep cosine to the fp32 vectors at ~0.99 (per-tensor: ~0.93).
        quantize_dynamic(
            str(target / FILES["onnx"]),
            str(target / FILES["onnx-int8"]),
            weight_type=QuantType.QInt8,
            per_channel=True,
            reduce_range=True,
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},  # fused ops carry no inferred types
        )
        written.append(target / FILES["onnx-int8"])
    log.info("onnx: exported %s", ", ".join(path.name for path in written))
    return written


def reading_length(model_dir: Path, tokenizer) -> int:
    """The tokens of a text the saved model reads, found as sentence-transformers finds them: the
    folder's ``sentence_bert_config.json`` ``max_seq_length`` (older saves, the packaged base model),
    else the tokenizer's ``model_max_length`` (what sentence-transformers 6 saves), at most the
    model's position embeddings."""
    config = json.loads((model_dir / "sentence_bert_config.json").read_text())
    if config.get("max_seq_length"):
        return int(config["max_seq_length"])
    positions = json.loads((model_dir / "config.json").read_text()).get("max_position_embeddings", 512)
    return int(min(tokenizer.model_max_length, positions))


class OnnxEncoder:
    """The subset of ``SentenceTransformer`` the pipeline uses (``encode``, ``tokenizer``, ``max_seq_length``)."""

    def __init__(self, model_dir: str | Path, backend: str = "onnx", threads: int | None = None):
        import onnxruntime
        from transformers import AutoTokenizer

        model_dir = Path(model_dir)
        _check_pipeline(model_dir)
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.max_seq_length = reading_length(model_dir, self.tokenizer)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or os.cpu_count() or 1
        self.session = onnxruntime.InferenceSession(
            str(model_dir / "onnx" / FILES[backend]), options, providers=["CPUExecutionProvider"]
        )
        self.inputs = {i.name for i in self.session.get_inputs()}

    def encode(
        self,
        texts: list[str],
        batch_size: int = 32,
        normalize_embeddings: bool = True,
        convert_to_numpy: bool = True,
        **_,
    ) -> np.ndarray:
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        # Longest first, as sentence-transformers does: batches of similar length pad little.
        order = np.argsort([-len(text) for text in texts], kind="stable")
        vectors = np.zeros((len(texts), 0), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            indices = order[start : start + batch_size]
            batch = self.tokenizer(
                [texts[i] for i in indices],
                padding=True,
                truncation=True,
                max_length=self.max_seq_length,
                return_tensors="np",
            )
            hidden = self.session.run(
                None, {name: batch[name].astype(np.int64) for name in INPUTS if name in self.inputs}
            )[0]
            mask = batch["attention_mask"][..., None].astype(np.float32)
            pooled = (hidden * mask).sum(axis=1) / mask.sum(axis=1).clip(min=1e-9)
            if vectors.shape[1] == 0:
                vectors = np.zeros((len(texts), pooled.shape[1]), dtype=np.float32)
            vectors[indices] = pooled
        if normalize_embeddings:
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True).clip(min=1e-12)
        return vectors


def load_encoder(version_uri: str, storage, backend: str | None = None):
    """The encoder the embedding refresh uses for the model at ``version_uri``.

    ``torch``: the SentenceTransformer. ``onnx`` / ``onnx-int8``: the stored export, made and stored
    (``<version>/onnx/``) by the first worker that needs it.
    """
    import shutil

    from include.matcher.foundations import layout
    from include.matcher.foundations.models import base_model_path, cache_dir, load_model, resolve_model

    backend = backend or embed_backend()
    if backend == "torch":
        return load_model(version_uri, storage)
    local = resolve_model(version_uri, storage)
    if local == base_model_path():  # never write into site-packages: export from a copy
        copy = cache_dir() / "base-model-onnx"
        if not (copy / "modules.json").exists():
            shutil.copytree(local, copy, dirs_exist_ok=True)
        local = copy
    file = local / "onnx" / FILES[backend]
    if not file.exists():
        remote = layout.Model(version_uri).onnx(FILES[backend]) if version_uri.startswith("s3://") else None
        if remote and storage.exists(remote):
            file.parent.mkdir(exist_ok=True)
            file.write_bytes(storage.get_bytes(remote))
        else:
            for written in export_onnx(local, quantize=backend == "onnx-int8"):
                if version_uri.startswith("s3://"):
                    storage.put_bytes(layout.Model(version_uri).onnx(written.name), written.read_bytes())
    return OnnxEncoder(local, backend)
