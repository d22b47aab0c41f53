# The two commands a newcomer needs:
#   make up    builds the default plugins and the streamer and runs the platform: the embedded
#              control plane with 4 simulated GPU nodes and this machine as a local node that
#              runs real desktops, the dashboard, API and sessions on https://localhost:8443/
#              (Ctrl-C stops)
#   make test  runs every check and test (what CI runs)
# Both run scripts/setup.sh first, which installs what is missing.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
CARGO ?= cargo
# Guests build in their own target dir (another target triple, another profile).
export VDI_PLUGINS_TARGET_DIR ?= $(CURDIR)/plugins/target
PLUGINS_OUT := $(VDI_PLUGINS_TARGET_DIR)/wasm32-wasip2/release

.PHONY: up test setup plugins lint unit bench

up: plugins
	$(CARGO) build --quiet -p vdi-streamer
	$(CARGO) run --quiet -p vdi-cli -- up --dev-idp --plugins-dir $(PLUGINS_OUT)

test: lint plugins
	cd plugins && CARGO_TARGET_DIR=$(VDI_PLUGINS_TARGET_DIR) $(CARGO) test --quiet
	cd tools/dev-idp && npm test
	cd dashboard && npm test
	$(CARGO) nextest run --workspace --no-fail-fast

setup:
	bash scripts/setup.sh

plugins: setup
	cd plugins && CARGO_TARGET_DIR=$(VDI_PLUGINS_TARGET_DIR) $(CARGO) build --release --target wasm32-wasip2
	bash plugins/quota-js/build.sh
	bash plugins/quota-py/build.sh

lint: setup
	$(CARGO) fmt --all --check
	cd plugins && $(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	cd plugins && CARGO_TARGET_DIR=$(VDI_PLUGINS_TARGET_DIR) $(CARGO) clippy --target wasm32-wasip2 -- -D warnings

# The figures in docs/benchmarks.md come from this target.
bench: plugins
	$(CARGO) build --release -p vdi-cli -p vdi-streamer
	for p in vdi_quota vdi_gpu_binpack vdi_desktop; do \
	  $(CARGO_TARGET_DIR_OR_DEFAULT)/release/vdi plugin bench $(PLUGINS_OUT)/$$p.wasm; done
	$(CARGO_TARGET_DIR_OR_DEFAULT)/release/vdi plugin bench plugins/quota-js/out/quota.wasm --iterations 4000
	$(CARGO_TARGET_DIR_OR_DEFAULT)/release/vdi plugin bench plugins/quota-py/out/quota.wasm --iterations 1000
	$(CARGO_TARGET_DIR_OR_DEFAULT)/release/vdi plugin bench $(PLUGINS_OUT)/vdi_gpu_binpack.wasm --iterations 1000 --batch 16
	$(CARGO_TARGET_DIR_OR_DEFAULT)/release/vdi bench-cluster
	$(CARGO_TARGET_DIR_OR_DEFAULT)/release/vdi bench-operator --plugins-dir $(PLUGINS_OUT)
	$(CARGO_TARGET_DIR_OR_DEFAULT)/release/vdi bench-operator --plugins-dir $(PLUGINS_OUT) --sessions 4000 --nodes 500 --probes 5
	$(CARGO_TARGET_DIR_OR_DEFAULT)/release/vdi bench-operator --plugins-dir $(PLUGINS_OUT) --sessions 16000 --nodes 2000 --probes 5
	$(CARGO_TARGET_DIR_OR_DEFAULT)/release/vdi-streamer-bench
	$(CARGO_TARGET_DIR_OR_DEFAULT)/release/vdi bench-startup --plugins-dir $(PLUGINS_OUT)
	$(CARGO_TARGET_DIR_OR_DEFAULT)/release/vdi bench-api

CARGO_TARGET_DIR_OR_DEFAULT := $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)
