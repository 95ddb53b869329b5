#!/bin/sh
# Compile depthwise kernel variants, one side module per variant and build (plain clang 14, relaxed clang 16):
#   build_variants.sh OUTDIR name=file.c[+other.c...][:-DFLAG,...] ...  ->  OUTDIR/libdw_<build>_<name>.so
# (each its own module, so variants may define the same internal symbols; dw_study.py loads one per variant).
set -e
out=$1; shift
here=$(cd "$(dirname "$0")" && pwd)
simd=$here/../../../py_pkg/wasmvision/simd
mkdir -p "$out"
base="--target=wasm32-unknown-emscripten -ffreestanding -nostdlib -fno-builtin -fvisibility=hidden -fPIC -O3 -msimd128 -I$simd"
for build in plain relaxed; do
  if [ $build = plain ]; then cc=clang; ld=wasm-ld; extra=""; else cc=/usr/lib/llvm-16/bin/clang; ld=/usr/lib/llvm-16/bin/wasm-ld; extra="-mrelaxed-simd"; fi
  for v in "$@"; do
    name=${v%%=*}; rest=${v#*=}; srcs=${rest%%:*}; flags=""
    case $rest in *:*) flags=$(echo "${rest#*:}" | tr ',' ' ');; esac
    objs=""
    for src in $(echo "$srcs" | tr '+' ' '); do
      o="$out/$build-$name-$(basename "$src" .c).o"
      $cc $base $extra $flags -c "$src" -o "$o"
      objs="$objs $o"
    done
    $ld --shared --experimental-pic --no-entry -o "$out/libdw_${build}_$name.so" $objs
  done
done
ls -l "$out"/*.so
