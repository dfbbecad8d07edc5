"""The erasure DAG run for real (``dag.test``): a manual trigger with an erasure request (never the keys:
Airflow keeps a run's conf for ever) erases them, deletes the request and writes a receipt."""

from __future__ import annotations

import json

import pytest

from include.matcher.foundations.uris import join_uri
from tests.helpers import aws_connection_json

pytestmark = pytest.mark.integration


def test_a_manual_trigger_erases_the_keys_and_a_dry_run_changes_nothing(
    s3_server, airflow_db, storage, locations, monkeypatch
):
    from airflow.dag_processing.dagbag import DagBag

    from include.matcher.stages.corpus import read_ledger
    from include.matcher.stages.ingest import ingest
    from include.matcher.stages.parse import parse

    storage.put_json(locations.jobs_file, {"CHEF": "Cook.", "PILOT": "Pilot."})
    for name in ("keep", "erase-me"):
        body = f"Line cook {name}. Grill, prep and kitchen hygiene for ten years in busy restaurants. " * 3
        storage.put_bytes(join_uri(locations.raw_cvs, "CHEF", f"{name}.txt"), body.encode())
    run = join_uri(locations.work, "runs", "night-1")
    parse(ingest(run, locations, storage), run, locations, storage)

    for name, var in locations.ENV.items():
        monkeypatch.setenv(var, getattr(locations, name))
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", aws_connection_json(s3_server))
    dag = DagBag(dag_folder=str(__import__("tests.helpers", fromlist=["x"]).PROJECT_ROOT / "dags")).dags[
        "matcher_erasure"
    ]
    from include.matcher.stages.erasure import submit_request

    request = submit_request(["CHEF/erase-me.txt"], [], locations, storage)
    dry = dag.test(run_conf={"request": request, "dry_run": True})
    assert str(dry.state).endswith("success")
    assert len(read_ledger(storage, locations)[0]["objects"]) == 2 and storage.exists(request)
    # (every param given: dag.test keeps the previous run's conf as the DAG's params in this process)
    done = dag.test(run_conf={"request": request, "dry_run": False})
    assert str(done.state).endswith("success")
    assert "erase-me" not in json.dumps(done.conf)  # Airflow keeps a run's conf for ever: it holds no key
    ledger, _ = read_ledger(storage, locations)
    assert [key.rsplit("/", 1)[-1] for key in ledger["objects"]] == ["keep.txt"] and ledger["erased"]
    assert not storage.exists(join_uri(locations.raw_cvs, "CHEF", "erase-me.txt"))
    assert not storage.exists(request)  # the request named the person: gone once carried out
    receipts = storage.list(join_uri(locations.work, "audit", "erasures"))
    assert len(receipts) == 1 and b"erase-me" not in storage.get_bytes(receipts[0].uri)

    # Cleared and run again after it finished: its receipt, not a failure or a second erasure.
    rerun = dag.test(run_conf={"request": request, "dry_run": False})
    assert (
        str(rerun.state).endswith("success") and len(storage.list(join_uri(locations.work, "audit", "erasures"))) == 1
    )

    # A request that names no one found anywhere fails, saying so.
    nobody = submit_request(["CHEF/nobody.txt"], [], locations, storage)
    assert str(dag.test(run_conf={"request": nobody, "dry_run": False}).state).endswith("failed")
