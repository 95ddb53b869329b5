// An expansion 1x1 conv (or a conv whose windows the GEMM gathers: the stem) and the depthwise conv that reads
// it, by bands of output rows: each band's input rows of the expanded tensor are computed into a small buffer
// (in L2) and the depthwise kernel runs on them at once, so the expanded tensor (MobileNetV2's 112x112x96:
// 4.8 MB) never goes to memory and back. The rows a
// band shares with the next (the window's overlap) are moved to the buffer's start, not recomputed.
#include "wvsimd.h"

EXPORT void wv_gemm(const GemmParams *p);
EXPORT void wv_dwconv(const DwconvParams *p);

// dst < src: a forward copy is safe when the ranges overlap.
static void move_down(f32 *dst, const f32 *src, long n) {
  long i = 0;
  for (; i + 4 <= n; i += 4) wasm_v128_store(dst + i, wasm_v128_load(src + i));
  for (; i < n; i++) dst[i] = src[i];
}

EXPORT void wv_pwdw(const PwDwParams *p) {
  const GemmParams *pw = (const GemmParams *)(uintptr_t)p->pw;
  const DwconvParams *dw = (const DwconvParams *)(uintptr_t)p->dw;
  GemmParams g = *pw;
  DwconvParams d = *dw;
  f32 *band = PTR(p->band);
  int N = (int)dw->n, H = (int)dw->h, W = (int)dw->w, C = (int)dw->c, KH = (int)dw->kh;
  int sh = (int)dw->sh, pt = (int)dw->pt, OH = (int)dw->oh, OW = (int)dw->ow, B = (int)p->band_oh;
  long row = (long)W * C, xrow = (long)W * pw->lda;
  const f32 *X = PTR(pw->a);
  f32 *Y = PTR(dw->y);
  g.c = p->band;
  g.ldc = (uint32_t)C;
  d.n = 1;
  d.x = p->band;
  for (int n = 0; n < N; n++) {
    int b0 = 0, b1 = 0;  // the rows [b0, b1) the buffer holds
    for (int o0 = 0; o0 < OH; o0 += B) {
      int o1 = o0 + B < OH ? o0 + B : OH;
      int r0 = o0 * sh - pt, r1 = (o1 - 1) * sh - pt + KH;
      r0 = r0 < 0 ? 0 : r0;
      r1 = r1 > H ? H : r1;
      int start = r0;
      if (b1 > r0 && b0 <= r0) {  // rows [r0, b1) are computed already
        if (r0 > b0) move_down(band, band + (long)(r0 - b0) * row, (long)(b1 - r0) * row);
        start = b1;
      }
      if (r1 > start) {
        if (pw->gather) g.row0 = (uint32_t)(((long)n * H + start) * W);  // the windows of these rows
        else g.a = (uint32_t)(uintptr_t)(X + ((long)n * H + start) * xrow);
        g.c = (uint32_t)(uintptr_t)(band + (long)(start - r0) * row);
        g.m = (uint32_t)((r1 - start) * W);
        wv_gemm(&g);
      }
      b0 = r0;
      b1 = r1 > start ? r1 : start;
      d.h = (uint32_t)(r1 - r0);
      d.pt = (uint32_t)(pt + r0 - o0 * sh);
      d.oh = (uint32_t)(o1 - o0);
      d.y = (uint32_t)(uintptr_t)(Y + ((long)n * OH + o0) * OW * C);
      wv_dwconv(&d);
    }
  }
}
