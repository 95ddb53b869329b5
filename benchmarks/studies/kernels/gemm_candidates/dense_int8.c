// pack: int8
// Study only: batch-1 dense with int8 weights (K, 32) blocks, per-column scales in bias[0:Npad], bias in bias[Npad:].
#include "wvsimd.h"

INLINE v128_t cvt_lo(v128_t h) { return wasm_f32x4_convert_i32x4(wasm_i32x4_extend_low_i16x8(h)); }
INLINE v128_t cvt_hi(v128_t h) { return wasm_f32x4_convert_i32x4(wasm_i32x4_extend_high_i16x8(h)); }

EXPORT void wv_gemm(const GemmParams *p) {
  Act act = act_read(&p->act);
  const f32 *a = PTR(p->a);
  const signed char *q = (const signed char *)(uintptr_t)p->bp;
  const f32 *sc = PTR(p->bias);
  f32 *c = PTR(p->c);
  int K = (int)p->k, N = (int)p->n, npad = (N + 31) / 32 * 32;
  const f32 *bias = sc + npad;
  for (int n0 = 0; n0 < N; n0 += 32) {
    v128_t c0 = wasm_f32x4_splat(0), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0;
    const signed char *qb = q + (long)n0 * K;
    for (int k = 0; k < K; k++, qb += 32) {
      v128_t x = wasm_v128_load32_splat(a + k);
      v128_t v0 = wasm_v128_load(qb), v1 = wasm_v128_load(qb + 16);
      v128_t h0 = wasm_i16x8_extend_low_i8x16(v0), h1 = wasm_i16x8_extend_high_i8x16(v0);
      v128_t h2 = wasm_i16x8_extend_low_i8x16(v1), h3 = wasm_i16x8_extend_high_i8x16(v1);
      c0 = MADD4(c0, x, cvt_lo(h0)); c1 = MADD4(c1, x, cvt_hi(h0));
      c2 = MADD4(c2, x, cvt_lo(h1)); c3 = MADD4(c3, x, cvt_hi(h1));
      c4 = MADD4(c4, x, cvt_lo(h2)); c5 = MADD4(c5, x, cvt_hi(h2));
      c6 = MADD4(c6, x, cvt_lo(h3)); c7 = MADD4(c7, x, cvt_hi(h3));
    }
    v128_t acc[8] = {c0, c1, c2, c3, c4, c5, c6, c7};
    for (int j = 0; j < 8; j++) {
      f32 t[4];
      v128_t v = wasm_f32x4_add(wasm_f32x4_mul(acc[j], wasm_v128_load(sc + n0 + 4 * j)), wasm_v128_load(bias + n0 + 4 * j));
      wasm_v128_store(t, act4(v, &act));
      for (int i = 0; i < 4 && n0 + 4 * j + i < N; i++) c[n0 + 4 * j + i] = t[i];
    }
  }
}
