"""Deployment settings are declared once: every MATCHER_* variable the code names is declared, read
through one function, and README's environment table is the generated one."""

from __future__ import annotations

import re

from include.matcher.foundations.settings import (
    VARIABLES,
    Locations,
    deployment_setting,
    environment_table,
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


def test_the_readme_environment_table_is_the_generated_one():
    readme = (PROJECT_ROOT / "README.md").read_text()
    table = readme.split("<!-- environment:start -->\n", 1)[1].split("\n<!-- environment:end -->", 1)[0]
    assert table == environment_table(), (
        "README's environment table is stale: paste `python -m include.matcher settings --environment` between "
        "its markers"
    )


def test_a_setting_is_the_environment_s_value_or_its_declared_default():
    assert deployment_setting("MATCHER_PARSE_SHARD_SIZE", {}) == "500"
    assert deployment_setting("MATCHER_PARSE_SHARD_SIZE", {"MATCHER_PARSE_SHARD_SIZE": "7"}) == "7"
    assert Locations.from_env({"MATCHER_WORK_URI": "s3://other/work"}).work == "s3://other/work"
    assert Locations.from_env({}).raw_cvs == VARIABLES["MATCHER_RAW_CVS_URI"].default
    assert parse_limits_from_env({"MATCHER_MAX_TEXT_CHARS": "1000"}).max_chars == 1000
