#!/usr/bin/env bash
# Builds the Python quota plugin into out/quota.wasm with componentize-py (installed into
# .tools/venv by scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")"
root=$(cd ../.. && pwd)
mkdir -p out
if [ out/quota.wasm -nt app.py ] && [ out/quota.wasm -nt "$root/wit/worlds.wit" ] && [ out/quota.wasm -nt "$root/wit/types.wit" ]; then
  exit 0
fi
"$root/.tools/venv/bin/componentize-py" -d "$root/wit" -w admission componentize app -o out/quota.wasm.tmp
mv out/quota.wasm.tmp out/quota.wasm
