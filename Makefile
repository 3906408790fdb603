# `make demo` and `make test` are the README's quickstart; .ci/run calls `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA ?= $(firstword $(wildcard ../shared/data/StockTwits_SPY_Sentiment_2017.gz) $(STOCKSENT_DATA))
DEMO_DIR := runs/demo

.PHONY: demo test install install-dev clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# The CPU build of torch first, so nothing later pulls a multi-GB CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0

install: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[serve,onnx,tune]'

install-dev: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[serve,onnx,tune,dev]'

demo: install
	rm -rf $(DEMO_DIR)
	$(BIN)/stocksent train $(if $(DATA),--data $(DATA)) --out $(DEMO_DIR)
	$(BIN)/stocksent evaluate --model $(DEMO_DIR)
	$(BIN)/stocksent predict --model $(DEMO_DIR) \
		'$$SPY breaking out to new highs, loading calls 🚀' \
		'$$SPY this is going to crash hard, buying puts' \
		'Fed meeting today, staying flat'

test: install-dev
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache
