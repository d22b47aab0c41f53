#!/usr/bin/env bash
# Builds the C quota plugin into out/quota.wasm (tools from scripts/setup.sh):
#   0. the unit tests of the JSON reader and the settings (test_settings.c) run natively, under
#      AddressSanitizer and UndefinedBehaviorSanitizer (the system's cc, gcc on Debian);
#   1. `wit-bindgen c` generates the admission world's bindings (out/gen: admission.{c,h} and
#      admission_component_type.o, the component type the linker embeds);
#   2. Debian's clang 14 compiles to wasm32-wasi against Debian's wasi-libc (preview 1);
#   3. rustup's wasm-component-ld (shipped with the wasm32-wasip2 target) links with Debian's
#      wasm-ld as a reactor (crt1-reactor.o, entry _initialize) and makes the core module a
#      component, adapting WASI preview 1 to 0.2 with its built-in reactor adapter.
# Skips the work while out/quota.wasm is newer than every input.
set -euo pipefail
cd "$(dirname "$0")"
tools_dir=${VDI_TOOLS_DIR:-../../.tools}
wit_bindgen=${VDI_WIT_BINDGEN:-$tools_dir/wit-bindgen/bin/wit-bindgen}
clang=${VDI_CLANG:-clang-14}
wasm_ld=${VDI_WASM_LD:-wasm-ld-14}
sysroot_lib=/usr/lib/wasm32-wasi
builtins=/usr/lib/llvm-14/lib/clang/14.0.6/lib/wasi/libclang_rt.builtins-wasm32.a

mkdir -p out
inputs=(*.c *.h build.sh ../../wit/worlds.wit ../../wit/types.wit)
if [ -f out/quota.wasm ] && [ -z "$(find "${inputs[@]}" -newer out/quota.wasm -print -quit)" ]; then
  exit 0
fi

missing=()
[ -x "$wit_bindgen" ] || missing+=("wit-bindgen ($wit_bindgen)")
command -v "$clang" >/dev/null || missing+=("$clang")
command -v "$wasm_ld" >/dev/null || missing+=("$wasm_ld")
[ -f "$sysroot_lib/crt1-reactor.o" ] || missing+=("wasi-libc ($sysroot_lib)")
[ -f "$builtins" ] || missing+=("libclang-rt-14-dev-wasm32 ($builtins)")
host=$(rustc -vV | sed -n 's/^host: //p')
component_ld="$(rustc --print sysroot)/lib/rustlib/$host/bin/wasm-component-ld"
[ -x "$component_ld" ] || missing+=("wasm-component-ld ($component_ld: rustup target add wasm32-wasip2)")
if [ ${#missing[@]} -gt 0 ]; then
  printf 'quota-c: missing %s; run scripts/setup.sh\n' "${missing[@]}" >&2
  exit 1
fi

rm -rf out/gen out/obj
mkdir -p out/gen out/obj
"${CC:-cc}" -std=c11 -Wall -Wextra -Werror -g -fsanitize=address,undefined \
  test_settings.c settings.c json.c -o out/obj/test_settings
out/obj/test_settings >/dev/null
if ! log=$("$wit_bindgen" c ../../wit --world admission --out-dir out/gen 2>&1); then
  printf '%s\n' "$log" >&2
  exit 1
fi
for src in quota.c settings.c json.c out/gen/admission.c; do
  "$clang" --target=wasm32-wasi -O2 -std=c11 -Wall -Wextra -Werror -Wno-unused-parameter \
    -I out/gen -c "$src" -o "out/obj/$(basename "${src%.c}").o"
done
"$component_ld" --wasm-ld-path "$(command -v "$wasm_ld")" --wasi-adapter reactor \
  -m wasm32 -L"$sysroot_lib" "$sysroot_lib/crt1-reactor.o" --entry _initialize \
  out/obj/*.o out/gen/admission_component_type.o -lc "$builtins" \
  -o out/quota.wasm.tmp
mv out/quota.wasm.tmp out/quota.wasm
