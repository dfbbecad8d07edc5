#!/usr/bin/env bash
# One full DAG run on generated demo data against the embedded S3 (called by `make demo`).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
MATCHER="$BIN/python -m include.matcher"
started=$(date +%s)

[ -d demo-data ] || $MATCHER demo-data --target demo-data --cvs-per-category 24
$MATCHER bootstrap
$MATCHER upload demo-data/cvs --to cvs
$MATCHER upload demo-data/job_descriptions.json --to jobs-file
$MATCHER upload demo-data/job-offers --to job-offers

scripts/airflow_env.sh $BIN/airflow db migrate >/dev/null
# Two epochs instead of the default three keep the demo short; passed as a manual trigger's params.
# Unattended: nobody is there to approve the promotion (`make up` and compose ask a person).
MATCHER_REQUIRE_APPROVAL=false scripts/airflow_env.sh $BIN/airflow dags test matcher_retraining \
  -c '{"epochs": 2}' > .local/demo-run.log 2>&1 || { tail -50 .local/demo-run.log; exit 1; }

$BIN/python scripts/task_timings.py .local/demo-run.log
$MATCHER last-run
echo "demo finished in $(( $(date +%s) - started ))s; full log: .local/demo-run.log"
