"""Helpers the tests share. No side effects on import (unlike conftest.py, which sets Airflow's environment)."""

from __future__ import annotations

import json
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def aws_connection_json(server) -> str:
    """Airflow's ``aws_default`` connection for the test S3 server, as AIRFLOW_CONN_AWS_DEFAULT takes it."""
    extra = {"endpoint_url": server.endpoint, "region_name": "us-east-1"}
    return json.dumps({"conn_type": "aws", "login": server.access_key, "password": server.secret_key, "extra": extra})
