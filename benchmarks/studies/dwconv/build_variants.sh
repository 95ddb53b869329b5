#!/bin/sh
# Compile depthwise kernel variants into one side module per build (plain clang 14, relaxed clang 16):
#   build_variants.sh OUTDIR name=file.c[:-DFLAG...] ...   each variant's wv_dwconv is exported as wv_dw_<name>.
set -e
out=$1; shift
here=$(cd "$(dirname "$0")" && pwd)
simd=$here/../../../py_pkg/wasmvision/simd
mkdir -p "$out"
base="--target=wasm32-unknown-emscripten -ffreestanding -nostdlib -fno-builtin -fvisibility=hidden -fPIC -O3 -msimd128 -I$simd"
for build in plain relaxed; do
  if [ $build = plain ]; then cc=clang; ld=wasm-ld; extra=""; else cc=/usr/lib/llvm-16/bin/clang; ld=/usr/lib/llvm-16/bin/wasm-ld; extra="-mrelaxed-simd"; fi
  objs=""
  for v in "$@"; do
    name=${v%%=*}; rest=${v#*=}; src=${rest%%:*}; flags=""
    case $rest in *:*) flags=$(echo "${rest#*:}" | tr ',' ' ');; esac
    $cc $base $extra $flags -Dwv_dwconv=wv_dw_$name -c "$src" -o "$out/$build-$name.o"
    objs="$objs $out/$build-$name.o"
  done
  $ld --shared --experimental-pic --no-entry -o "$out/libdw_$build.so" $objs
done
ls -l "$out"/*.so
