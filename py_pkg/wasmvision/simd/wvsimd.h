// Shared by the kernel files: types, the parameter structs, the fused activation epilogue.
// No libc (the module is linked with -nostdlib): kernels work only on caller-provided numpy buffers.
#ifndef WVSIMD_H
#define WVSIMD_H

#include <wasm_simd128.h>

#include "wvsimd_params.h"

#define INLINE static inline __attribute__((always_inline))

typedef float f32;

// acc + a*b. The relaxed build (-mrelaxed-simd, clang >= 16) uses f32x4.relaxed_madd: one fused instruction where the
// engine and CPU have FMA, mul+add elsewhere; either rounding is within the kernels' tolerance of numpy.
#ifdef __wasm_relaxed_simd__
typedef float wv_f32x4 __attribute__((__vector_size__(16)));
#define MADD4(acc, a, b) ((v128_t)__builtin_wasm_relaxed_madd_f32x4((wv_f32x4)(a), (wv_f32x4)(b), (wv_f32x4)(acc)))
#define WV_BUILD 1
#else
#define MADD4(acc, a, b) wasm_f32x4_add((acc), wasm_f32x4_mul((a), (b)))
#define WV_BUILD 0
#endif

// Pointers travel as uint32_t wasm32 addresses in the parameter structs.
#define PTR(addr) ((f32 *)(uintptr_t)(addr))

typedef struct {
  int kind;
  v128_t lo, hi, alpha, beta, zero, one;
  f32 slo, shi, salpha, sbeta;
} Act;

INLINE Act act_read(const ActParams *p) {
  Act a;
  a.kind = (int)p->kind;
  a.slo = p->lo; a.shi = p->hi; a.salpha = p->alpha; a.sbeta = p->beta;
  a.lo = wasm_f32x4_splat(a.slo); a.hi = wasm_f32x4_splat(a.shi);
  a.alpha = wasm_f32x4_splat(a.salpha); a.beta = wasm_f32x4_splat(a.sbeta);
  a.zero = wasm_f32x4_splat(0.0f); a.one = wasm_f32x4_splat(1.0f);
  return a;
}

// pmin/pmax are single minps/maxps on x86 (f32x4.min/max are NaN-exact sequences, several times slower).
INLINE v128_t clamp4(v128_t v, v128_t lo, v128_t hi) { return wasm_f32x4_pmin(wasm_f32x4_pmax(v, lo), hi); }

INLINE v128_t act4(v128_t v, const Act *a) {
  switch (a->kind) {
    case ACT_CLIP: return clamp4(v, a->lo, a->hi);
    case ACT_HARDSWISH:  // x * clip(alpha*x + beta, 0, 1) (ONNX HardSwish: alpha 1/6, beta 1/2)
      return wasm_f32x4_mul(v, clamp4(wasm_f32x4_add(wasm_f32x4_mul(v, a->alpha), a->beta), a->zero, a->one));
    case ACT_HARDSIGMOID:
      return clamp4(wasm_f32x4_add(wasm_f32x4_mul(v, a->alpha), a->beta), a->zero, a->one);
    default: return v;
  }
}

INLINE f32 clamp1(f32 v, f32 lo, f32 hi) { v = v < lo ? lo : v; return hi < v ? hi : v; }

INLINE f32 act1(f32 v, const Act *a) {
  switch (a->kind) {
    case ACT_CLIP: return clamp1(v, a->slo, a->shi);
    case ACT_HARDSWISH: return v * clamp1(v * a->salpha + a->sbeta, 0.0f, 1.0f);
    case ACT_HARDSIGMOID: return clamp1(v * a->salpha + a->sbeta, 0.0f, 1.0f);
    default: return v;
  }
}

#endif
