# The Makefile is the interface: every target sets itself up (make setup is idempotent).
SHELL := /bin/bash
.DEFAULT_GOAL := help

export BENTOML_DO_NOT_TRACK := true
export MLFLOW_DISABLE_TELEMETRY := true
export DVC_NO_ANALYTICS := 1
export DO_NOT_TRACK := 1
export UV_PROJECT_ENVIRONMENT := $(CURDIR)/.venv
export PYTHONHASHSEED := 0
# dvc runs stage commands (`influence ...`) through the shell: they must resolve to the venv
export PATH := $(CURDIR)/.venv/bin:$(PATH)

PYTHON ?= python3.11
VENV := .venv
UV := $(VENV)/bin/uv
BIN := $(VENV)/bin
STAMP := $(VENV)/.synced

.PHONY: help setup run pipeline test test-slow test-browser bench serve backfill mlflow-ui exp-show lint audit clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(UV):
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check "uv==0.13.9"

$(STAMP): $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --quiet
	@touch $(STAMP)

setup: $(STAMP) ## create .venv and install the locked dependencies (idempotent)

run: backfill ## the main job: pipeline (dvc repro), 30-day score history, then serve on 127.0.0.1:3000
	@$(MAKE) --no-print-directory serve

pipeline: setup ## dvc repro: simulate, validate, features, train, evaluate, register
	$(BIN)/dvc repro

test: setup ## the default test suite (fast; includes an end-to-end run on a small world)
	$(BIN)/pytest -m "not slow" -q

test-slow: setup ## the slow tests too (full default world, real servers)
	$(BIN)/pytest -q

serve: setup ## serve the registry's champion on http://127.0.0.1:3000 (API page at /, OpenAPI at /docs.json)
	@# BentoML's home in the project, not ~/bentoml (each server also gets a private metrics folder)
	BENTOML_HOME=$(CURDIR)/.bentoml $(BIN)/influence serve --port 3000

backfill: pipeline ## score the last 31 days (score_daily.backfill_days) into the score history; fills only missing days
	$(BIN)/influence backfill --skip-existing

bench: setup ## speed and memory benchmarks; writes reports/bench.json
	$(BIN)/python -m benchmarks.run

test-browser: setup ## the browser test of the MLflow UI (headless Chromium); screenshots in reports/ui/
	$(BIN)/pytest -m browser -q

mlflow-ui: setup ## MLflow UI on http://127.0.0.1:5000 over the project's store (mlflow.db, mlartifacts/)
	@# the links open on the training runs (MLflow 3's sidebar switch starts on GenAI otherwise)
	@$(BIN)/influence runs --last 3 2>/dev/null || echo "no runs yet: make pipeline first"
	@# no GenAI job runner (8 extra processes on a 2-core box); experiments and registry only
	MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false \
	$(BIN)/mlflow ui --backend-store-uri "$${MLFLOW_TRACKING_URI:-sqlite:///mlflow.db}" \
		--artifacts-destination ./mlartifacts --host 127.0.0.1 --port 5000 --workers 1

# `dvc exp show` as a readable table: the headline metrics and only the params that differ
# between the rows (--only-changed); every other column (other metrics, deps) is dropped;
# a Markdown table (--md), so a narrow terminal does not cut columns to "…".
# Add columns with EXP_KEEP (a regex), e.g. make exp-show EXP_KEEP='score_p95|train\.seed'
EXP_METRICS := spearman_outcome|spearman_latent|pairwise_accuracy|ndcg_100|stability_p99_abs_delta
PARAM_SECTIONS := base|simulate|validate|features|labels|score_daily|train|calibrate|evaluate|register
EXP_KEEP ?=
exp-show: setup ## dvc exp show: headline metrics and the params that differ (EXP_KEEP adds columns)
	$(BIN)/dvc exp show --no-pager --only-changed --md \
		--drop '^(?!($(PARAM_SECTIONS))\.)' --keep '^(Experiment|Created|$(EXP_METRICS)$(if $(EXP_KEEP),|$(EXP_KEEP)))$$'

lint: setup
	$(BIN)/ruff check .

# Offline: the PyPA advisories bundled in security/ (a dated snapshot: the run says how old),
# or any OSV folder or zip given as AUDIT_DB. Exit 1 when a locked version is affected.
audit: setup ## check uv.lock for known vulnerabilities offline; writes reports/audit.json
	$(BIN)/python -m security.audit $(if $(AUDIT_DB),--db "$(AUDIT_DB)")

clean: ## remove generated data, models and reports (keeps .venv)
	rm -rf data mlruns mlartifacts mlflow.db reports/bench.json .pytest_cache
