// im2col for the convolutions the GEMM runs as (pixels x taps) @ (taps x Cout): the stem and grouped convs.
// cols[p, (ky*KW + kx)*Cg + c] = x[n, oy*sh - pt + ky*dh, ox*sw - pl + kx*dw, c0 + c], zero outside the image.
// Padding is written as zeros here instead of copying the input into a padded buffer first (numpy's route:
// pad copy + one strided gather, ~4x slower for MobileNetV2's stem in Pyodide).
#include "wvsimd.h"

// Descriptor words. x (N,H,W,C) C-contiguous; cols (N*OH*OW, KH*KW*Cg) contiguous; channels [c0, c0+Cg).
enum { I_X, I_COLS, I_N, I_H, I_W, I_C, I_KH, I_KW, I_SH, I_SW, I_DH, I_DW, I_PT, I_PL, I_OH, I_OW, I_C0, I_CG,
       I_WORDS };

EXPORT int wv_im2col_words(void) { return I_WORDS; }

INLINE void copy_run(f32 *dst, const f32 *src, int n) {
  int i = 0;
  for (; i + 4 <= n; i += 4) wasm_v128_store(dst + i, wasm_v128_load(src + i));
  for (; i < n; i++) dst[i] = src[i];
}

INLINE void zero_run(f32 *dst, int n) {
  int i = 0;
  for (; i + 4 <= n; i += 4) wasm_v128_store(dst + i, wasm_f32x4_splat(0.0f));
  for (; i < n; i++) dst[i] = 0.0f;
}

EXPORT void wv_im2col(const uint32_t *d) {
  const f32 *X = D_PTR(d, I_X);
  f32 *cols = D_PTR(d, I_COLS);
  int N = (int)d[I_N], H = (int)d[I_H], W = (int)d[I_W], C = (int)d[I_C];
  int KH = (int)d[I_KH], KW = (int)d[I_KW], sh = (int)d[I_SH], sw = (int)d[I_SW];
  int dh = (int)d[I_DH], dw = (int)d[I_DW], pt = (int)d[I_PT], pl = (int)d[I_PL];
  int OH = (int)d[I_OH], OW = (int)d[I_OW], c0 = (int)d[I_C0], Cg = (int)d[I_CG];
  for (int n = 0; n < N; n++) {
    const f32 *x = X + (long)n * H * W * C + c0;
    for (int oy = 0; oy < OH; oy++)
      for (int ox = 0; ox < OW; ox++) {
        for (int ky = 0; ky < KH; ky++) {
          int iy = oy * sh - pt + ky * dh;
          for (int kx = 0; kx < KW; kx++, cols += Cg) {
            int ix = ox * sw - pl + kx * dw;
            if (iy < 0 || iy >= H || ix < 0 || ix >= W) zero_run(cols, Cg);
            else copy_run(cols, x + ((long)iy * W + ix) * C, Cg);
          }
        }
      }
  }
}
