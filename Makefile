# Two commands for a new user: `make demo` (set up + one full DAG run) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export PYTHONPATH := $(CURDIR)
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export AIRFLOW_HOME := $(CURDIR)/.airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER := $(CURDIR)/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AIRFLOW__CORE__UNIT_TEST_MODE := False
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
# Progress bars are for terminals: in task logs tqdm's stderr lines read as errors.
export TQDM_DISABLE := 1
S3_PORT ?= 8333
# The running server's port (s3-start records it), so a shell never points at another one.
S3_ENV = eval "$$($(BIN)/python -m include.matcher s3 env)"

.PHONY: help install demo demo-approval test test-fast lint up down s3-start s3-stop demo-data clean browser-deps up-celery down-celery test-distributed

help:
	@echo "make demo   - install, start the embedded S3, upload demo data, run the DAG once"
	@echo "make test   - run the test suite (what CI runs, after make lint)"
	@echo "make test-fast - the tests that need no S3 server, fine-tuning, Airflow or browser (minutes)"
	@echo "make lint   - ruff check and ruff format --check"
	@echo "make up     - embedded S3 + airflow standalone (UI on http://localhost:8080)"
	@echo "make demo-approval - after make demo: a second night that waits for your approval in the UI"
	@echo "make down   - stop the embedded S3 and the Celery topology"
	@echo "make up-celery - the production topology natively: Redis, PostgreSQL, CeleryExecutor, default + gpu workers"
	@echo "make test-distributed - the DAG on that topology through the REST API (minutes; not in make test)"

$(BIN)/activate: requirements.txt
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $(BIN)/activate

install: $(BIN)/activate

s3-start: install
	$(BIN)/python -m include.matcher s3 start --port $(S3_PORT)

s3-stop:
	-$(BIN)/python -m include.matcher s3 stop

demo: s3-start
	$(S3_ENV) && scripts/demo.sh

# After make demo: new demo CVs and the base model back in production, so the next night (triggered
# from the UI with its defaults, under make up) passes the gate and waits for a person's approval.
demo-approval: s3-start
	$(S3_ENV) && $(BIN)/python -m include.devtools.second_night

# Manual and API triggers only by default: the trigger dialog's "unpause" would otherwise start the
# latest nightly run at once. MATCHER_SCHEDULE="0 2 * * *" make up runs the nightly schedule.
up: s3-start
	@echo "Airflow UI: http://localhost:8080  user: admin  password: printed below on first start, and kept in .airflow/simple_auth_manager_passwords.json.generated"
	$(S3_ENV) && MATCHER_SCHEDULE=$${MATCHER_SCHEDULE:-none} AIRFLOW__API__HOST=127.0.0.1 scripts/airflow_env.sh $(BIN)/airflow standalone

down: s3-stop down-celery

# docker-compose.yaml's topology without Docker: Debian's redis-server and postgresql (installed when
# missing and root), Airflow with the CeleryExecutor and two workers (queues default and gpu).
up-celery: install
	$(BIN)/python -m include.devtools.celery_topology up

down-celery:
	-@[ -x $(BIN)/python ] && $(BIN)/python -m include.devtools.celery_topology down

# Every service the topology started is stopped by its pid afterwards, pass, fail or a killed pytest.
test-distributed: install
	MATCHER_DISTRIBUTED=1 $(BIN)/python -m pytest tests/distributed; status=$$?; $(MAKE) --no-print-directory down-celery; exit $$status

# The browser test drives Debian's chromium through its chromedriver (no browser download).
browser-deps:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing Debian's chromium and chromium-driver for the browser test"; \
	  (apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null)); \
	else echo "chromium/chromium-driver missing and not root: the browser test will be skipped (sudo apt-get install chromium chromium-driver)"; fi

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: install browser-deps
	MATCHER_REQUIRE_APPROVAL=false $(BIN)/python -m pytest

# Minutes, not the better part of an hour: what needs no S3 server, no fine-tuning, no Airflow and no
# browser, with the storage fixture in memory (tests/conftest.py). make test (and CI) still runs all.
FAST_TESTS := not s3 and not model and not airflow and not browser
test-fast: install
	MATCHER_TEST_STORE=memory MATCHER_REQUIRE_APPROVAL=false $(BIN)/python -m pytest -m "$(FAST_TESTS)"

clean: s3-stop
	-@[ -x $(BIN)/python ] && $(BIN)/python -m include.devtools.celery_topology clean
	rm -rf .local .airflow demo-data test-artifacts
