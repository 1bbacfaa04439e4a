# tsm-infra: `make demo` and `make test` are all a newcomer needs; both set themselves up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CHECKOV_VENV := .venv-checkov
SPEC ?= examples/three-nodes.yaml

.PHONY: setup system-deps demo test lint pytest constraints bench clean

setup: system-deps $(VENV)/.installed

# PostgreSQL (server and psql) for the boot module's database tests; installed only when
# missing, and only where we may (root with apt-get): elsewhere those tests say why they skip.
system-deps:
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || ! command -v psql >/dev/null; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; \
		else \
			echo "PostgreSQL is missing: install it (apt-get install postgresql) for the database tests"; \
		fi; \
	fi

$(VENV)/.installed: pyproject.toml requirements/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c requirements/constraints.txt -e '.[dev]'
	touch $@

# checkov downgrades boto3 when installed beside it, so it gets a virtualenv of its own.
$(CHECKOV_VENV)/.installed: requirements/checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements/checkov.txt
	touch $@

# The whole cluster, deployed into an embedded emulated AWS: no account, no credentials.
demo: setup
	$(BIN)/tsm-infra deploy $(SPEC) --local

# Static checks: code style, types, and both template linters (zero findings allowed), the
# linters on the templates as rendered: with the code that the committed ones only name.
lint: setup $(CHECKOV_VENV)/.installed
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy src bench
	$(BIN)/tsm-infra lint
	rm -rf build/templates && $(BIN)/tsm-infra package --out build/templates
	$(CHECKOV_VENV)/bin/checkov --directory build/templates --framework cloudformation \
		--skip-download --compact --quiet

pytest: setup
	$(BIN)/pytest

# Everything CI checks.
test: lint pytest

# How deploy scales with the node count, against the emulator (figures, not a test).
bench: setup
	$(BIN)/python bench/deploy_scaling.py

# Re-pin both virtualenvs after changing dependencies in pyproject.toml.
constraints:
	rm -rf /tmp/tsm-infra-pin && $(PYTHON) -m venv /tmp/tsm-infra-pin
	/tmp/tsm-infra-pin/bin/pip install --quiet -e '.[dev]'
	{ sed -n '1,2p' requirements/constraints.txt; \
	  /tmp/tsm-infra-pin/bin/pip freeze --exclude-editable; } > requirements/constraints.tmp
	mv requirements/constraints.tmp requirements/constraints.txt

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) build .mypy_cache .pytest_cache .ruff_cache .hypothesis .tsm-rehearsal
