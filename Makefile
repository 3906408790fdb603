# `make demo` and `make test` are the README's quickstart; .ci/run calls `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA ?= $(firstword $(wildcard ../shared/data/StockTwits_SPY_Sentiment_2017.gz) $(STOCKSENT_DATA))
DEMO_DIR := runs/demo
EXTRAS := serve,onnx,tune,index,spark,ray
# Debian packages the tests use: Chromium for the page tests, Java for Spark. Installed when missing.
SYSTEM_PACKAGES := chromium chromium-driver
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: demo test lint docs install install-dev system-deps clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# The CPU build of torch first, so nothing later pulls a multi-GB CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0

install: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[serve,onnx,tune]'

install-dev: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[$(EXTRAS),dev]'

system-deps:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
		echo "installing Debian's $(SYSTEM_PACKAGES) for the browser tests"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(SYSTEM_PACKAGES) >/dev/null; \
	fi
	@if ! command -v java >/dev/null; then \
		echo "installing Debian's default-jre-headless for the Spark tests"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq default-jre-headless >/dev/null; \
	fi

demo: install
	rm -rf $(DEMO_DIR)
	$(BIN)/stocksent train $(if $(DATA),--data $(DATA)) --out $(DEMO_DIR)
	$(BIN)/stocksent evaluate --model $(DEMO_DIR)
	$(BIN)/stocksent predict --model $(DEMO_DIR) \
		'$$SPY breaking out to new highs, loading calls 🚀' \
		'$$SPY this is going to crash hard, buying puts' \
		'Fed meeting today, staying flat'

lint: install-dev
	$(BIN)/ruff check src tests benchmarks docs/hooks
	$(BIN)/ruff format --check src tests benchmarks docs/hooks

# The documentation site, built into site/ without the network (mkdocs.yml). Strict: a broken link
# or anchor, a page missing from the nav or an API name that is gone fails the build, and so `make test`.
docs: install-dev
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

test: install-dev system-deps lint docs
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) build dist site src/*.egg-info .pytest_cache
