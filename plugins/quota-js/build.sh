#!/usr/bin/env bash
# Builds the JavaScript quota plugin into out/quota.wasm (needs `npm ci` here first; the
# set-up script does it).
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p out
if [ out/quota.wasm -nt quota.js ] && [ out/quota.wasm -nt ../../wit/worlds.wit ] && [ out/quota.wasm -nt ../../wit/types.wit ]; then
  exit 0
fi
npx --no-install componentize-qjs --wit ../../wit --js quota.js -n admission --sync -o out/quota.wasm
