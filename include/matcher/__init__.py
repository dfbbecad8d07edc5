"""CV-to-job matcher: the nightly retraining pipeline's stages as a plain Python package.

Each stage is a function from input URIs and a config to output URIs; the Airflow DAG only wires
them together, and ``python -m include.matcher`` runs any of them from a shell.
Importing this package is cheap: torch and sentence-transformers load only when a model is used.
"""

from include.matcher.settings import GateConfig, Locations, PipelineConfig, TrainingConfig

__all__ = ["VectorMatcher", "Locations", "PipelineConfig", "TrainingConfig", "GateConfig"]


def __getattr__(name: str):
    if name == "VectorMatcher":
        from include.matcher.matcher import VectorMatcher

        return VectorMatcher
    raise AttributeError(name)
