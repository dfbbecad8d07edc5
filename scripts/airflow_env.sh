#!/usr/bin/env bash
# Run "$@" with Airflow's aws_default connection pointing at the S3 that the standard AWS_*
# variables describe (the embedded SeaweedFS by default). Credentials stay in the environment.
set -euo pipefail
if [ -n "${AWS_ENDPOINT_URL_S3:-}" ] && [ -z "${AIRFLOW_CONN_AWS_DEFAULT:-}" ]; then
  AIRFLOW_CONN_AWS_DEFAULT="$(python3 -c '
import json, os
print(json.dumps({"conn_type": "aws", "login": os.environ["AWS_ACCESS_KEY_ID"],
  "password": os.environ["AWS_SECRET_ACCESS_KEY"],
  "extra": {"endpoint_url": os.environ["AWS_ENDPOINT_URL_S3"],
            "region_name": os.environ.get("AWS_DEFAULT_REGION", "us-east-1")}}))')"
  export AIRFLOW_CONN_AWS_DEFAULT
fi
exec "$@"
