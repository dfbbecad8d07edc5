"""Vectors the models read one night, remembered for the next, so validation reads each text once.

Every night validation reads the held-out CVs (title stripped and kept) and the bias audit's name
variants with the candidate, production and, once production is a trained model, the base model.
Production and the base model read the same texts the same way the night before: production was then
the candidate or production. A :class:`VectorMemo` holds last night's vectors, and validation reads
only what it lacks: on a night that brings a new candidate and a few new CVs, one model's reading
instead of two or three.

A vector is remembered by what read it (:func:`reader_id`: the model's weights, its reading length,
the CV pooling and the precision it reads in) and the SHA-256 of the exact text it read (after
redaction and the reading window), beside the key of the CV it came from. The memo is one Parquet file
in the night's folder, holding what that night used and nothing older; an erasure removes the CV's rows
by ``key`` like any other Parquet row, and retention deletes the file with the run's other personal parts.
"""

from __future__ import annotations

import hashlib
import io
import weakref
from collections.abc import Callable, Sequence

import numpy as np

_FINGERPRINTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def weights_fingerprint(model) -> str:
    """SHA-256 of the model's parameters (names, dtypes, bytes): the same weights wherever they are stored."""
    import torch

    if model not in _FINGERPRINTS:
        digest = hashlib.sha256()
        for name, tensor in sorted(model.state_dict().items()):
            tensor = tensor.detach().to("cpu").contiguous()
            digest.update(f"{name}\0{tensor.dtype}\0{tuple(tensor.shape)}\n".encode())
            digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
        _FINGERPRINTS[model] = digest.hexdigest()[:32]
    return _FINGERPRINTS[model]


def reader_id(model, pooling: str) -> str | None:
    """What a vector depends on besides its text; None for a reader that cannot be fingerprinted
    (an ONNX session): its vectors are read every time."""
    if not hasattr(model, "state_dict"):
        return None
    reading = getattr(model, "matcher_reading", "fp32")
    return f"{weights_fingerprint(model)}/{getattr(model, 'max_seq_length', None)}/{pooling}/{reading}"


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class VectorMemo:
    """Vectors by (reader, text hash): :meth:`recall` answers from what an earlier night read and reads
    the rest; :meth:`to_parquet` keeps what this night used, for the next."""

    def __init__(self, remembered: dict[tuple[str, str], tuple[str, np.ndarray]] | None = None, source: str = ""):
        self.remembered = remembered or {}  # (reader, text hash) -> (CV key, vector)
        self.used: dict[tuple[str, str], tuple[str, np.ndarray]] = {}
        self.source = source  # where the remembered vectors came from, for the report
        self.recalled = self.read = 0

    def recall(
        self,
        model,
        pooling: str,
        texts: Sequence[str],
        owners: Sequence[str],
        read: Callable[[list[str]], np.ndarray],
    ) -> np.ndarray:
        """Vectors of ``texts`` (each the exact text the model reads, ``owners`` the CV keys they
        come from), remembered where they can be, ``read`` for the rest (each distinct text once)."""
        if len(owners) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(owners)} owners")
        reader = reader_id(model, pooling)
        if reader is None or not texts:
            return read(list(texts))
        hashes = [text_hash(text) for text in texts]
        new = {h: text for h, text in zip(hashes, texts, strict=True) if (reader, h) not in self.used}
        missing = {h: text for h, text in new.items() if (reader, h) not in self.remembered}
        if missing:
            fresh = read(list(missing.values()))
            for h, vector in zip(missing, fresh, strict=True):
                self.remembered[(reader, h)] = ("", np.asarray(vector, dtype=np.float32))
        self.read += len(missing)
        self.recalled += len(new) - len(missing)  # from an earlier night; this night's repeats count as neither
        vectors = []
        for h, owner in zip(hashes, owners, strict=True):
            if (reader, h) not in self.used:
                self.used[(reader, h)] = (owner, self.remembered[(reader, h)][1])
            vectors.append(self.used[(reader, h)][1])
        return np.stack(vectors)

    def to_parquet(self, forget: set[str] = frozenset()) -> bytes:
        """What this night used, without the CVs in ``forget`` (erased while the night ran)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        rows = [(owner, reader, h, vector) for (reader, h), (owner, vector) in self.used.items() if owner not in forget]
        dimension = int(rows[0][3].shape[0]) if rows else 0
        table = pa.table(
            {
                "key": pa.array([row[0] for row in rows], pa.string()),
                "reader": pa.array([row[1] for row in rows], pa.string()),
                "text_hash": pa.array([row[2] for row in rows], pa.string()),
                "vector": pa.FixedSizeListArray.from_arrays(
                    pa.array(np.concatenate([row[3] for row in rows]) if rows else [], pa.float32()), dimension
                ),
            }
        )
        buffer = io.BytesIO()
        pq.write_table(table, buffer)
        return buffer.getvalue()

    @classmethod
    def from_parquet(cls, blob: bytes, source: str = "") -> VectorMemo:
        import pyarrow.parquet as pq

        table = pq.read_table(io.BytesIO(blob))
        vectors = table.column("vector").combine_chunks()
        dimension = vectors.type.list_size if len(vectors) else 0
        matrix = vectors.flatten().to_numpy().reshape(len(vectors), dimension).astype(np.float32)
        remembered = {
            (reader, h): (owner, matrix[index])
            for index, (owner, reader, h) in enumerate(
                zip(
                    table.column("key").to_pylist(),
                    table.column("reader").to_pylist(),
                    table.column("text_hash").to_pylist(),
                    strict=True,
                )
            )
        }
        return cls(remembered, source)

    def summary(self) -> dict:
        return {"from": self.source or None, "recalled": self.recalled, "read": self.read}
