"""Every DAG imports cleanly, has tags and retries; the matcher DAG has the shape of the pipeline."""

import subprocess
import sys
from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag

DAGS_FOLDER = Path(__file__).resolve().parents[2] / "dags"
PIPELINE = {
    "ingest": ["find_new_files", "check_for_new_data"],
    "parse": ["plan_shards", "parse_shard", "collect"],
    "train": ["build_pairs", "fine_tune"],
    "validate": ["evaluate", "gate"],
    "refresh_embeddings": ["plan_embedding_shards", "embed_shard", "publish"],
}


@pytest.fixture(scope="module")
def dag_bag():
    return DagBag(dag_folder=str(DAGS_FOLDER))


def test_no_import_errors(dag_bag):
    assert not dag_bag.import_errors, dag_bag.import_errors
    assert dag_bag.dags


def test_every_dag_has_tags_and_every_task_retries(dag_bag):
    for dag in dag_bag.dags.values():
        assert dag.tags, f"{dag.dag_id} has no tags"
        for task in dag.tasks:
            assert task.retries >= 2, f"{dag.dag_id}.{task.task_id} retries {task.retries}"
            assert task.retry_exponential_backoff


def test_matcher_dag_schedule_and_run_policy(dag_bag):
    dag = dag_bag.dags["matcher_retraining"]
    assert dag.catchup is False and dag.max_active_runs == 1
    assert dag.timetable.expression == "0 2 * * *"
    assert dag.doc_md and "gate" in dag.doc_md


def test_matcher_dag_reads_like_the_pipeline(dag_bag):
    dag = dag_bag.dags["matcher_retraining"]
    groups = dag.task_group.children
    assert list(groups) == ["ingest", "parse", "train", "validate", "approve", "promote", "refresh_embeddings"]
    expected = {f"{group}.{task}" for group, tasks in PIPELINE.items() for task in tasks} | {"approve", "promote"}
    assert set(dag.task_ids) == expected
    downstream = {task.task_id: sorted(task.downstream_task_ids) for task in dag.tasks}
    assert downstream["ingest.find_new_files"] == ["ingest.check_for_new_data", "parse.collect", "parse.plan_shards"]
    assert downstream["ingest.check_for_new_data"] == ["parse.plan_shards"]
    assert downstream["parse.plan_shards"] == ["parse.parse_shard"]
    assert downstream["parse.parse_shard"] == ["parse.collect"]
    assert downstream["parse.collect"] == ["refresh_embeddings.plan_embedding_shards", "train.build_pairs"]
    assert downstream["train.fine_tune"] == ["validate.evaluate"]
    assert downstream["validate.evaluate"] == ["promote", "validate.gate"]
    assert downstream["validate.gate"] == ["approve"]
    assert downstream["approve"] == ["promote"]
    assert downstream["promote"] == ["refresh_embeddings.plan_embedding_shards"]
    assert downstream["refresh_embeddings.embed_shard"] == ["refresh_embeddings.publish"]
    # A refused gate skips promote only: the refresh still embeds new CVs with the production model.
    assert dag.get_task("validate.gate").ignore_downstream_trigger_rules is False
    assert dag.get_task("refresh_embeddings.plan_embedding_shards").trigger_rule == "none_failed"
    # A person in the loop: Airflow's own ApprovalOperator; unanswered, the default option rejects.
    approve = dag.get_task("approve")
    assert type(approve).__mro__[1].__name__ == "ApprovalOperator" and approve.defaults == ["Reject"]
    assert approve.response_timeout.total_seconds() == 24 * 3600
    assert approve.assigned_users is None  # no MATCHER_REVIEWERS: anyone allowed to act on the DAG answers
    assert [type(n).__name__ for n in approve.notifiers] == ["ApprovalRequestNotifier"]
    for task in dag.tasks:
        assert (
            task.doc_md or task.doc or (task.python_callable.__doc__ if hasattr(task, "python_callable") else None)
        ), task.task_id


def test_heavy_stages_are_mapped_over_named_shards(dag_bag):
    dag = dag_bag.dags["matcher_retraining"]
    for task_id in ("parse.parse_shard", "refresh_embeddings.embed_shard"):
        task = dag.get_task(task_id)
        assert type(task).__name__.endswith("MappedOperator"), task_id
        assert task.map_index_template == "{{ shard_name }}"


def test_params_form(dag_bag):
    params = dag_bag.dags["matcher_retraining"].params
    expected = {
        "loss",
        "epochs",
        "batch_size",
        "learning_rate",
        "negative_ratio",
        "base_model",
        "min_improvement",
        "raw_prefix",
        "force_retrain",
    }
    assert expected <= set(params.keys())
    loss = params.get_param("loss")
    assert loss.schema["enum"] == ["cosine", "multiple_negatives", "triplet"]
    from airflow.sdk.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError, match="less than the minimum"):
        params.get_param("epochs").resolve(0)
    with pytest.raises(ParamValidationError, match="is not one of"):
        loss.resolve("hinge")


def test_dag_file_imports_no_ml_stack():
    """Parsing the DAG (every scheduler loop) must not import torch or sentence-transformers."""
    code = (
        "import sys, runpy; runpy.run_path(sys.argv[1]);"
        "heavy = [m for m in ('torch', 'sentence_transformers', 'transformers', 'pdfplumber', 'docx') if m in "
        "sys.modules];"
        "print(','.join(heavy))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(DAGS_FOLDER / "matcher_retraining.py")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == ""


def test_every_dag_triggers_with_its_defaults_and_every_param_has_a_title(dag_bag):
    """Airflow 3's trigger form counts an empty value of a type without "null" as missing and greys
    out Trigger: ``raw_prefix`` (default "") once disabled the nightly DAG's form out of the box.
    Each default is checked against its param's own schema, as the form checks it."""
    problems = []
    for dag_id, dag in sorted(dag_bag.dags.items()):
        for name in dag.params:
            param = dag.params.get_param(name)
            types = param.schema.get("type")
            types = types if isinstance(types, list) else [types]
            if param.value in (None, "") and "null" not in types:
                problems.append(f"{dag_id}.{name}: a required blank")
            if not param.schema.get("title"):
                problems.append(f"{dag_id}.{name}: no title")
            try:
                param.resolve()
            except Exception as error:  # noqa: BLE001 - every failure is a problem to list
                problems.append(f"{dag_id}.{name}: {error}")
    assert problems == []
    raw_prefix = dag_bag.dags["matcher_retraining"].params.get_param("raw_prefix")
    assert raw_prefix.resolve(None) is None and raw_prefix.resolve("s3://other/cvs") == "s3://other/cvs"
    assert "at least 1" in dag_bag.dags["matcher_retraining"].params.get_param("epochs").description


def test_rollback_dag_is_manual_and_asks_for_a_version(dag_bag):
    dag = dag_bag.dags["matcher_rollback"]
    assert dag.schedule is None or str(dag.timetable.__class__.__name__) == "NullTimetable"
    assert "version" in dag.params


def test_promote_and_refresh_update_assets_and_failures_notify(dag_bag):
    dag = dag_bag.dags["matcher_retraining"]
    outlets = {task.task_id: [a.name for a in task.outlets] for task in dag.tasks if task.outlets}
    assert outlets == {
        "promote": ["matcher_production_model"],
        "refresh_embeddings.publish": ["matcher_current_embeddings"],
    }
    assert dag.get_task("promote").outlets[0].uri.endswith("/production.json")
    for task in dag.tasks:
        assert task.on_failure_callback, task.task_id


def test_failure_notifier_logs_without_cv_text(caplog):
    from types import SimpleNamespace

    from include.airflow_support import MatcherFailureNotifier

    ti = SimpleNamespace(dag_id="matcher_retraining", task_id="parse", try_number=2, log_url="http://ui/log")
    with caplog.at_level("ERROR"):
        MatcherFailureNotifier().notify(
            {"task_instance": ti, "run_id": "scheduled__x", "exception": ValueError("CV text here")}
        )
    assert "matcher_retraining.parse failed" in caplog.text and "ValueError" in caplog.text
    assert "CV text here" not in caplog.text


def test_schedule_none_leaves_manual_triggers_only(monkeypatch):
    monkeypatch.setenv("MATCHER_SCHEDULE", "none")
    dag = DagBag(dag_folder=str(DAGS_FOLDER / "matcher_retraining.py")).dags["matcher_retraining"]
    assert type(dag.timetable).__name__ == "NullTimetable"


def test_the_approval_goes_to_the_deployment_s_reviewers(monkeypatch):
    """``MATCHER_REVIEWERS`` names who may answer: Airflow's ``assigned_users``, which its API enforces."""
    monkeypatch.setenv("MATCHER_REVIEWERS", "alice, bob")
    dag = DagBag(dag_folder=str(DAGS_FOLDER / "matcher_retraining.py")).dags["matcher_retraining"]
    assert dag.get_task("approve").assigned_users == [{"id": "alice", "name": "alice"}, {"id": "bob", "name": "bob"}]


def test_the_reviewers_are_told_where_to_answer_and_by_when(caplog, monkeypatch):
    """The approval's notifier: the Required Action's address, the deadline, who may answer, through
    the failure notifier's channels (the log always; e-mail and Slack where set)."""
    from datetime import UTC, datetime
    from types import SimpleNamespace

    from include.airflow_support import ApprovalRequestNotifier

    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "http://airflow.example")
    ti = SimpleNamespace(dag_id="matcher_retraining", task_id="approve")
    task = SimpleNamespace(
        deadline=datetime(2026, 12, 8, 2, 0, tzinfo=UTC), assigned_users=[{"id": "alice", "name": "alice"}]
    )
    with caplog.at_level("INFO"):
        ApprovalRequestNotifier().notify({"task_instance": ti, "task": task, "run_id": "scheduled__2026-12-07"})
    assert "a promotion waits for alice" in caplog.text and "by 2026-12-08 02:00 UTC" in caplog.text
    assert (
        "http://airflow.example/dags/matcher_retraining/runs/scheduled__2026-12-07/tasks/approve/required_actions"
        in caplog.text
    )
