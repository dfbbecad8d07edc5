"""Deployment settings are declared once: every MATCHER_* variable the code names is declared, read
through one function, and README's environment table is the generated one."""

from __future__ import annotations

import re

import pytest

from include.matcher.foundations.settings import (
    VARIABLES,
    Locations,
    PipelineConfig,
    check_deployment,
    deployment_flag,
    deployment_setting,
    environment_table,
    parse_boolean,
    parse_limits_from_env,
)
from tests.helpers import PROJECT_ROOT

SOURCES = [path for folder in ("include", "dags", "plugins") for path in (PROJECT_ROOT / folder).rglob("*.py")]


def test_every_variable_the_code_names_is_declared_and_read_through_one_function():
    named = {name for path in SOURCES for name in re.findall(r"\bMATCHER_[A-Z0-9_]+\b", path.read_text())}
    assert named and named <= set(VARIABLES), sorted(named - set(VARIABLES))
    readers = re.compile(r"environ(?:\.get)?[\[(]\s*[\"']MATCHER_|getenv\(\s*[\"']MATCHER_")
    direct = [str(path.relative_to(PROJECT_ROOT)) for path in SOURCES if readers.search(path.read_text())]
    assert direct == [], f"read MATCHER_* through settings.deployment_setting, not os.environ: {direct}"


def test_the_documented_environment_table_is_the_generated_one():
    page = (PROJECT_ROOT / "docs" / "settings.md").read_text()
    table = page.split("<!-- environment:start -->\n", 1)[1].split("\n<!-- environment:end -->", 1)[0]
    assert table == environment_table(), (
        "docs/settings.md's environment table is stale: paste `python -m include.matcher settings --environment` "
        "between its markers"
    )


def test_a_setting_is_the_environment_s_value_or_its_declared_default():
    assert deployment_setting("MATCHER_PARSE_SHARD_SIZE", {}) == "500"
    assert deployment_setting("MATCHER_PARSE_SHARD_SIZE", {"MATCHER_PARSE_SHARD_SIZE": "7"}) == "7"
    assert Locations.from_env({"MATCHER_WORK_URI": "s3://other/work"}).work == "s3://other/work"
    assert Locations.from_env({}).raw_cvs == VARIABLES["MATCHER_RAW_CVS_URI"].default
    assert parse_limits_from_env({"MATCHER_MAX_TEXT_CHARS": "1000"}).max_chars == 1000


@pytest.mark.parametrize("word", ["on", "ON", " true ", "Yes", "1", "true "])
def test_a_yes_is_read_as_yes_everywhere(word):
    assert parse_boolean(word) is True
    assert deployment_flag("MATCHER_REQUIRE_APPROVAL", {"MATCHER_REQUIRE_APPROVAL": word}) is True
    assert PipelineConfig().with_params({"require_approval": word}).gate.require_approval is True


@pytest.mark.parametrize("word", ["enabled", "required", "ja", "2", "truee", "none"])
def test_an_unknown_yes_or_no_is_an_error_never_a_silent_no(word, monkeypatch):
    """``MATCHER_REQUIRE_APPROVAL=enabled`` used to turn human oversight off without a word."""
    with pytest.raises(ValueError, match="MATCHER_REQUIRE_APPROVAL must be one of true/false"):
        deployment_flag("MATCHER_REQUIRE_APPROVAL", {"MATCHER_REQUIRE_APPROVAL": word})
    with pytest.raises(ValueError, match="must be one of true/false"):
        PipelineConfig().with_params({"require_approval": word})
    monkeypatch.setenv("MATCHER_REQUIRE_APPROVAL", word)
    with pytest.raises(ValueError, match="MATCHER_REQUIRE_APPROVAL"):
        PipelineConfig()  # the deployment's default of the run param


def test_the_deployment_decides_whether_a_run_needs_approval_unless_the_run_says(monkeypatch):
    monkeypatch.setenv("MATCHER_REQUIRE_APPROVAL", "true")
    assert PipelineConfig().gate.require_approval is True
    assert PipelineConfig().with_params({"require_approval": False}).gate.require_approval is False
    monkeypatch.setenv("MATCHER_REQUIRE_APPROVAL", "off")
    assert PipelineConfig().with_params({}).gate.require_approval is False


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("MATCHER_AUDIT_RETENTION_DAYS", "-1", "at least 183"),
        ("MATCHER_AUDIT_RETENTION_DAYS", "30", "at least 183"),
        ("MATCHER_RETENTION_DAYS", "0", "at least 1"),
        ("MATCHER_APPROVAL_TIMEOUT_HOURS", "nan", "above 0"),
        ("MATCHER_APPROVAL_TIMEOUT_HOURS", "inf", "above 0"),
        ("MATCHER_APPROVAL_TIMEOUT_HOURS", "abc", "a number"),
        ("MATCHER_APPROVAL_TIMEOUT_HOURS", "-1", "above 0"),
        ("MATCHER_APPROVAL_TIMEOUT_HOURS", "0", "above 0"),
        ("MATCHER_PARSE_SHARD_SIZE", "0", "at least 1"),
        ("MATCHER_PARSE_SHARD_SIZE", "2.5", "a whole number"),
        ("MATCHER_KEEP_SNAPSHOTS", "-3", "at least 0"),
        ("MATCHER_EMBED_BACKEND", "tensorrt", "one of torch, onnx, onnx-int8"),
        ("MATCHER_CELERY_API_PORT", "70000", "at most 65535"),
    ],
)
def test_every_deployment_setting_is_checked_where_it_is_declared_in_one_line(name, value, says):
    with pytest.raises(ValueError, match=says) as refused:
        deployment_setting(name, {name: value})
    assert str(refused.value).startswith(name) and "\n" not in str(refused.value)
    with pytest.raises(ValueError, match=name):
        check_deployment({name: value})


def test_every_declared_default_passes_its_own_check():
    check_deployment({})
    assert deployment_setting("MATCHER_APPROVAL_TIMEOUT_HOURS", {"MATCHER_APPROVAL_TIMEOUT_HOURS": "0.5"}) == "0.5"
    assert deployment_setting("MATCHER_AUDIT_RETENTION_DAYS", {"MATCHER_AUDIT_RETENTION_DAYS": "365"}) == "365"


@pytest.mark.parametrize(
    ("name", "value"), [("MATCHER_APPROVAL_TIMEOUT_HOURS", "nan"), ("MATCHER_AUDIT_RETENTION_DAYS", "-1")]
)
def test_the_cli_refuses_a_bad_deployment_setting_in_one_line(name, value):
    import os
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "include.matcher", "settings"],
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT), name: value},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and done.stderr.strip().startswith(f"error: {name} must be"), done.stderr[-2000:]
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_deployment_sets_its_own_run_defaults_for_the_form_the_nights_and_the_cli(monkeypatch):
    """``MATCHER_RUN_DEFAULTS``: what the trigger form shows and a run without the param uses; a
    param given still wins; a bad value stops everything at start with one line."""
    import pytest

    from include.airflow_support import dag_params
    from include.matcher.foundations.context import RunContext
    from include.matcher.foundations.settings import check_deployment

    monkeypatch.setenv("MATCHER_RUN_DEFAULTS", '{"epochs": 1, "min_improvement": 0.0}')
    params = dag_params()
    assert params["epochs"].value == 1 and params["min_improvement"].value == 0.0
    assert RunContext.of(None, {}, None).config.training.epochs == 1
    assert RunContext.of(None, {"epochs": 4}, None).config.training.epochs == 4
    for bad, said in (
        ('{"epochs": 0}', "epochs must be at least 1"),
        ('{"no_such": 1}', "unknown run setting"),
        ("[1]", "must be a JSON object"),
        ('{"require_approval": false}', "MATCHER_REQUIRE_APPROVAL"),
        ("{epochs", "not JSON"),
    ):
        monkeypatch.setenv("MATCHER_RUN_DEFAULTS", bad)
        with pytest.raises(ValueError, match=said):
            check_deployment()
