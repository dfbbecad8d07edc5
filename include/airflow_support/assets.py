"""The deployment check every DAG runs first, the S3 connection id, and the assets the pipeline updates."""

from __future__ import annotations

from airflow.sdk import Asset

from include.matcher.foundations.settings import Locations, check_deployment, deployment_setting

# Every DAG imports this first: a bad deployment setting shows as one line among Airflow's import errors.
check_deployment()
AWS_CONN_ID = deployment_setting("MATCHER_AWS_CONN_ID")
_LOCATIONS = Locations.from_env()
# Downstream DAGs can be scheduled on these; each event carries the model version (and metrics).
PRODUCTION_MODEL = Asset(name="matcher_production_model", uri=f"{_LOCATIONS.registry.rstrip('/')}/production.json")
CURRENT_EMBEDDINGS = Asset(name="matcher_current_embeddings", uri=f"{_LOCATIONS.embeddings.rstrip('/')}/current.json")
