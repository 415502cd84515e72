# The two commands of the README. Each creates/refreshes .venv itself, installs the package
# editable, registers the venv's Jupyter kernel, then runs.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
READY  := $(VENV)/.ready
PRESET ?= cpu

.PHONY: test reproduce venv bench clean-venv

venv: $(READY)

# Re-run the install whenever pyproject.toml changes. torch==2.13.0 is pinned, so pip takes
# the CPU wheel from local disk where one is provided.
$(READY): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	$(PY) -m ipykernel install --sys-prefix --name sparling --display-name "Python (sparling)" >/dev/null
	@touch $(READY)

test: $(READY)
	$(PY) -m pytest -q

reproduce: $(READY)
	$(PY) -m sparling reproduce --preset $(PRESET)

bench: $(READY)
	$(PY) bench/bottleneck_speed.py

clean-venv:
	rm -rf $(VENV)
