// Global average pool, NHWC: y[n, c] = sum_p x[n, p, c] / P over the P = H*W pixels.
// Channels 16 at a time in registers while the pixels stream past (one pass over x, no partial sums in memory).
#include "wvsimd.h"

EXPORT void wv_gap(const GapParams *p) {
  const f32 *X = PTR(p->x);
  f32 *Y = PTR(p->y);
  int N = (int)p->n, P = (int)p->p, C = (int)p->c;
  f32 inv = p->inv;
  v128_t vinv = wasm_f32x4_splat(inv);
  for (int n = 0; n < N; n++) {
    const f32 *x = X + (long)n * P * C;
    f32 *y = Y + (long)n * C;
    int c = 0;
    for (; c + 16 <= C; c += 16) {
      v128_t a0 = wasm_f32x4_splat(0.0f), a1 = a0, a2 = a0, a3 = a0;
      for (int p = 0; p < P; p++) {
        const f32 *xp = x + (long)p * C + c;
        a0 = wasm_f32x4_add(a0, wasm_v128_load(xp));
        a1 = wasm_f32x4_add(a1, wasm_v128_load(xp + 4));
        a2 = wasm_f32x4_add(a2, wasm_v128_load(xp + 8));
        a3 = wasm_f32x4_add(a3, wasm_v128_load(xp + 12));
      }
      wasm_v128_store(y + c, wasm_f32x4_mul(a0, vinv));
      wasm_v128_store(y + c + 4, wasm_f32x4_mul(a1, vinv));
      wasm_v128_store(y + c + 8, wasm_f32x4_mul(a2, vinv));
      wasm_v128_store(y + c + 12, wasm_f32x4_mul(a3, vinv));
    }
    for (; c + 4 <= C; c += 4) {
      v128_t a0 = wasm_f32x4_splat(0.0f);
      for (int p = 0; p < P; p++) a0 = wasm_f32x4_add(a0, wasm_v128_load(x + (long)p * C + c));
      wasm_v128_store(y + c, wasm_f32x4_mul(a0, vinv));
    }
    for (; c < C; c++) {
      f32 a = 0.0f;
      for (int p = 0; p < P; p++) a += x[(long)p * C + c];
      y[c] = a * inv;
    }
  }
}
