// im2col for the convolutions the GEMM runs as (pixels x taps) @ (taps x Cout): the stem and grouped convs.
// cols[p, (ky*KW + kx)*Cg + c] = x[n, oy*sh - pt + ky*dh, ox*sw - pl + kx*dw, c0 + c], zero outside the image.
// Padding is written as zeros here instead of copying the input into a padded buffer first (numpy's route:
// pad copy + one strided gather, ~4x slower for MobileNetV2's stem in Pyodide).
#include "wvim2col.h"

// n >= 4: whole vectors, the last one overlapping the one before (no scalar tail); n < 4 (a 3-channel tap): scalar.
INLINE void copy_run(f32 *dst, const f32 *src, int n) {
  if (n < 4) {
    for (int i = 0; i < n; i++) dst[i] = src[i];
    return;
  }
  int i = 0;
  for (; i + 4 <= n; i += 4) wasm_v128_store(dst + i, wasm_v128_load(src + i));
  if (i < n) wasm_v128_store(dst + n - 4, wasm_v128_load(src + n - 4));
}

INLINE void zero_run(f32 *dst, int n) {
  int i = 0;
  for (; i + 4 <= n; i += 4) wasm_v128_store(dst + i, wasm_f32x4_splat(0.0f));
  for (; i < n; i++) dst[i] = 0.0f;
}

// Output pixels [p0, p1) (flattened over n, oy, ox) into cols, one row of KH*KW*Cg floats each.
void im2col_rows(const Im2colParams *p, long p0, long p1, f32 *cols) {
  const f32 *X = PTR(p->x);
  int H = (int)p->h, W = (int)p->w, C = (int)p->c;
  int KH = (int)p->kh, KW = (int)p->kw, sh = (int)p->sh, sw = (int)p->sw;
  int dh = (int)p->dh, dw = (int)p->dw, pt = (int)p->pt, pl = (int)p->pl;
  int OH = (int)p->oh, OW = (int)p->ow, c0 = (int)p->c0, Cg = (int)p->cg;
  int ox = (int)(p0 % OW), oy = (int)(p0 / OW % OH);  // divisions once per call, not per pixel
  const f32 *x = X + p0 / ((long)OW * OH) * H * W * C + c0;
  for (long q = p0; q < p1; q++) {
    if (ox == OW) {
      ox = 0;
      if (++oy == OH) { oy = 0; x += (long)H * W * C; }
    }
    int ix0 = ox++ * sw - pl;
    // the KW taps of one kernel row are one contiguous run of KW*C floats when they are all inside the image,
    // undilated and not a group's slice (the stem: 9 floats per row instead of 3 runs of 3)
    int whole_row = dw == 1 && Cg == C && ix0 >= 0 && ix0 + KW <= W;
    for (int ky = 0; ky < KH; ky++) {
      int iy = oy * sh - pt + ky * dh;
      if (whole_row && iy >= 0 && iy < H) {
        copy_run(cols, x + ((long)iy * W + ix0) * C, KW * C);
        cols += KW * C;
        continue;
      }
      for (int kx = 0; kx < KW; kx++, cols += Cg) {
        int ix = ix0 + kx * dw;
        if (iy < 0 || iy >= H || ix < 0 || ix >= W) zero_run(cols, Cg);
        else copy_run(cols, x + ((long)iy * W + ix) * C, Cg);
      }
    }
  }
}
