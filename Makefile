# The two README commands: `make reproduce` (the study, quick profile, offline data) and
# `make test` (all tests). Both create the virtual environment first when it is missing.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PROFILE ?= quick
STAMP  := $(VENV)/.cfx-installed

.PHONY: env test reproduce smoke clean-results strip-notebooks

env: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

# All tests: library unit tests and the notebooks under nbval in the `smoke` profile.
test: $(STAMP)
	CFX_PROFILE=smoke $(PY) -m pytest tests --nbval-lax notebooks

# The study in the given profile (default `quick`) on the offline default data.
reproduce: $(STAMP)
	$(PY) -m cfx_lib.reproduce --profile $(PROFILE)

smoke: $(STAMP)
	$(PY) -m cfx_lib.reproduce --profile smoke

# Remove outputs from notebooks before committing (executed copies live under results/).
strip-notebooks: $(STAMP)
	$(PY) -m cfx_lib.notebook_tools strip notebooks/*.ipynb
