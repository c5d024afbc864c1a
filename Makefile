# cmkd_lab — two commands a newcomer needs:
#   make demo   set up (.venv) and run the main job on the built-in default task
#   make test   set up (.venv) and run the tests
PY ?= python3
VENV ?= .venv
# A CPU-only wheel is fine for everything here; on a GPU machine pick the
# torch build you need before `make setup` (any torch >= 2.2 works).
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin

.PHONY: setup demo test lab docs bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@

demo: setup
	$(BIN)/python -m cmkd_lab demo

test: setup
	$(BIN)/python -m pytest -q

# JupyterLab on the notebooks (CMKD_LAB_FAST=1 make lab: the quick pass); --allow-root only when run as root.
lab: setup
	$(BIN)/jupyter lab notebooks/ $(if $(filter 0,$(shell id -u)),--allow-root)

# The book, built offline into docs/_build/html (CMKD_LAB_FAST=1 make docs: the notebooks in the quick pass;
# an executed copy kept by `make test` in test-artifacts/executed/ is reused).
docs: setup
	$(BIN)/python scripts/build_docs.py

clean:
	rm -rf runs .pytest_cache docs/_build docs/_generated docs/notebooks docs/api

# The student edition of the notebooks (every cell tagged `solution` removed, outputs cleared): build/student/.
.PHONY: student
student: setup
	$(BIN)/python scripts/student_edition.py --out build/student
