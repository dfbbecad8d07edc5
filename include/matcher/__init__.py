"""CV-to-job matcher: the nightly retraining pipeline's stages as a plain Python package.

Each stage is a function from input URIs and a config to output URIs; the Airflow DAG only wires
them together, and ``python -m include.matcher`` runs any of them from a shell.
Importing this package is cheap: torch and sentence-transformers load only when a model is used.
"""

from include.matcher.foundations.errors import BadInput, Conflict, MatcherError, NotFound, StorageUnavailable
from include.matcher.foundations.settings import GateConfig, Locations, PipelineConfig, TrainingConfig

__all__ = [
    "BadInput",
    "CVParser",
    "Conflict",
    "GateConfig",
    "Locations",
    "MatcherError",
    "MatcherTrainer",
    "NotFound",
    "PipelineConfig",
    "Rejected",
    "StorageUnavailable",
    "TrainingConfig",
    "TrainingDatasetBuilder",
    "VectorMatcher",
]
# The seed's Python API (the Django command's classes): loaded on first use, with what they need.
_LAZY = {
    "VectorMatcher": "include.matcher.serving.matcher",
    "CVParser": "include.matcher.python_api",
    "TrainingDatasetBuilder": "include.matcher.python_api",
    "MatcherTrainer": "include.matcher.python_api",
    "Rejected": "include.matcher.foundations.documents",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(name)
