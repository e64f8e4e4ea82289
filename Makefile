# Two commands for a newcomer: `make lab` and `make test`. Both bootstrap what they need.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: setup tidb-build tidb-up tidb-down lab lab-ja test test-elsewhere test-external compliance lint run tutorial bench clean

setup: $(STAMP)  ## create .venv and install the package with its dev extras

# The dialect (sqlalchemy-tidb/) comes in as a dependency by path, then again editable, so
# that a change to its code takes effect without a reinstall.
$(STAMP): pyproject.toml sqlalchemy-tidb/pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	$(BIN)/python -m pip install --quiet --no-deps -e ./sqlalchemy-tidb
	@touch $(STAMP)

tidb-build: setup  ## build tidb-server once (cached outside the repo); no-op with TIDB_URL
	$(BIN)/crm-tidb build

tidb-up: setup  ## start the local TiDB, or check the one TIDB_URL points at
	$(BIN)/crm-tidb up

tidb-down: setup
	$(BIN)/crm-tidb down

# JupyterLab refuses to run as root (containers, CI boxes) unless told it may.
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)

# Options for JupyterLab itself, e.g. make lab LAB_ARGS="--port 8902 --no-browser".
LAB_ARGS ?=

lab: tidb-up  ## start TiDB and open JupyterLab on the notebooks (options: LAB_ARGS)
	$(BIN)/jupyter lab --notebook-dir=notebooks $(ALLOW_ROOT) $(LAB_ARGS)

# The Japanese edition (notebooks/ja) in a lab whose menus are Japanese. The language is a
# default of this lab only, from a config folder under build/ put first on JUPYTER_CONFIG_PATH:
# nothing is written to ~/.jupyter (crm_helpers/devtools/lab_ja.py).
LAB_JA_CONFIG := $(CURDIR)/build/lab-ja/config

lab-ja: tidb-up  ## start TiDB and open the Japanese edition in a Japanese JupyterLab (LAB_ARGS)
	$(BIN)/python -m crm_helpers.devtools.lab_ja $(LAB_JA_CONFIG)
	JUPYTER_CONFIG_PATH="$(LAB_JA_CONFIG)$${JUPYTER_CONFIG_PATH:+:$$JUPYTER_CONFIG_PATH}" \
		$(BIN)/jupyter lab --notebook-dir=notebooks/ja $(ALLOW_ROOT) $(LAB_ARGS)

# Extra pytest options, e.g. make test PYTEST_ARGS="-v --durations=15".
PYTEST_ARGS ?=
# compare.py's options, e.g. make compliance COMPLIANCE_ARGS=--full (the whole suite both ways).
COMPLIANCE_ARGS ?=

# The tests that share the session's TiDB run one after another in one pytest-xdist worker; the
# `lifecycle` tests (tidb-servers of their own) and the files that use only databases of their
# own run in the other workers meanwhile (the groups: xdist_group in conftest.py).
TEST_WORKERS ?= 3

test: setup tidb-build lint  ## the whole suite: helper tests and nbval over the notebooks
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

# The second and third passes run what depends on where the session's TiDB is: everything but
# the `lifecycle` tests, which start tidb-servers of their own on free ports in folders of
# their own (so TIDB_PORT, TIDB_LOCAL_HOME and TIDB_URL change nothing for them), and the
# `same_everywhere` ones, which reach TiDB only through an engine built from the settings, or
# not at all (tests/conftest.py lists them); `make test` runs them all. The browser test stays
# in the pass on other ports (`make lab` there).
ELSEWHERE_ARGS ?= -m "not lifecycle and not same_everywhere"
EXTERNAL_ARGS ?= -m "not lifecycle and not same_everywhere and not browser"

# The suite on other ports and in another folder while a second tidb-server (the decoy) runs
# on the default ports; the decoy must be left as it was (.ci/suite_elsewhere.py).
test-elsewhere: setup tidb-build
	$(BIN)/python .ci/suite_elsewhere.py $(ELSEWHERE_ARGS) $(PYTEST_ARGS)

# The suite against "the user's own TiDB", named only by TIDB_URL (root with a password, data
# of its own); afterwards it must hold nothing new but what the notebooks document.
test-external: setup tidb-build
	$(BIN)/python .ci/suite_elsewhere.py --external $(EXTERNAL_ARGS) $(PYTEST_ARGS)

compliance: setup tidb-build  ## sqlalchemy-tidb's suites through tidb:// and mysql+pymysql, compared
	$(BIN)/python -m crm_helpers.devtools.dialect_suites $(COMPLIANCE_ARGS)

run: tidb-up  ## execute every notebook headless into build/ (+ HTML), print the tutorial's result
	$(BIN)/python -m crm_helpers.devtools.notebook_run build

tutorial: tidb-up  ## run the tutorial's own program (examples/tutorial_main.py) on test_sqlalchemy
	$(BIN)/python -c "from crm_helpers.lesson.accounts import prepare_tutorial_database as p; p()"
	$(BIN)/python examples/tutorial_main.py

bench: tidb-up  ## loading and reading benchmark (BENCH_ROWS, default 1,000,000)
	$(BIN)/python benchmarks/bench.py
	$(BIN)/python benchmarks/notebook_time.py

lint: setup
	$(BIN)/ruff check .

clean:  ## remove the local TiDB's data and the virtualenv (the tidb-server cache stays)
	-$(BIN)/crm-tidb down
	rm -rf .tidb $(VENV) build
