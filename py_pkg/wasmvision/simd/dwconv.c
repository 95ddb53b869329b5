// Depthwise KxK convolution, NHWC, any stride, any (asymmetric) zero padding, fused bias + activation:
// y[n,oy,ox,c] = act(bias[c] + sum_{ky,kx} x[n, oy*sh-pt+ky, ox*sw-pl+kx, c] * w[ky,kx,c]).
// Padding is never materialised: a border pixel clips its tap range to the image (dw_pixel).
// 3x3 with stride 1 along x runs row kernels (dw3s1_run): 4 channels, their 9 weights in registers, sliding
// along x so each input column is loaded once and feeds the three outputs that use it. 5x5 and some 3x3 stride 2
// run window-row kernels (dwconv_rows.c). Other shapes: an interior pixel (dw_interior) uses tap offsets
// computed once per layer, 4 channels per step.
#include "wvdwconv.h"

// mul + add in both builds: per pixel, relaxed_madd made the 112-wide stride-2 layers 15-20 % slower
#define TAP(V, OFS) V = wasm_f32x4_add(V, wasm_f32x4_mul(wasm_v128_load(xp + (OFS)), wasm_v128_load(wp + (OFS))));

#ifndef DW_L1_BYTES  // (the study harness, benchmarks/studies/dwconv, varies these)
#define DW_L1_BYTES 24576  // input bytes of one x tile (3 rows x its columns x C): stays in L1 over the channel blocks
#endif
#ifndef DW3S2_ROWS_MAX_W
// 3x3 stride 2 by window rows: 20 % faster than per pixel on 56- and 28-wide images with relaxed_madd, slower
// on 112-wide ones (their rows, 64-96 channels, evict each other from L1) and in the plain build
#define DW3S2_ROWS_MAX_W 64
#endif
#ifndef DW_MIN_TILE
#define DW_MIN_TILE 8  // outputs: a run's start (9 weights, 2 columns) costs about 2 outputs' worth of loads
#endif

NOINLINE void dw_pixel(const f32 *x, int W, int C, const f32 *w, int KW, const f32 *bias, f32 *y, int c, int iy0,
                       int ix0, int ky0, int ky1, int kx0, int kx1, const Act *act) {
  for (; c + 16 <= C; c += 16) {
    v128_t a0 = wasm_v128_load(bias + c), a1 = wasm_v128_load(bias + c + 4);
    v128_t a2 = wasm_v128_load(bias + c + 8), a3 = wasm_v128_load(bias + c + 12);
    for (int ky = ky0; ky < ky1; ky++)
      for (int kx = kx0; kx < kx1; kx++) {
        const f32 *xp = x + ((long)(iy0 + ky) * W + (ix0 + kx)) * C + c;
        const f32 *wp = w + ((long)ky * KW + kx) * C + c;
        TAP(a0, 0) TAP(a1, 4) TAP(a2, 8) TAP(a3, 12)
      }
    wasm_v128_store(y + c, act4(a0, act));
    wasm_v128_store(y + c + 4, act4(a1, act));
    wasm_v128_store(y + c + 8, act4(a2, act));
    wasm_v128_store(y + c + 12, act4(a3, act));
  }
  for (; c + 4 <= C; c += 4) {
    v128_t a0 = wasm_v128_load(bias + c);
    for (int ky = ky0; ky < ky1; ky++)
      for (int kx = kx0; kx < kx1; kx++) {
        const f32 *xp = x + ((long)(iy0 + ky) * W + (ix0 + kx)) * C + c;
        const f32 *wp = w + ((long)ky * KW + kx) * C + c;
        TAP(a0, 0)
      }
    wasm_v128_store(y + c, act4(a0, act));
  }
  for (; c < C; c++) {  // C not a multiple of 4
    f32 a = bias[c];
    for (int ky = ky0; ky < ky1; ky++)
      for (int kx = kx0; kx < kx1; kx++)
        a += x[((long)(iy0 + ky) * W + (ix0 + kx)) * C + c] * w[((long)ky * KW + kx) * C + c];
    y[c] = act1(a, act);
  }
}

// ------------------------------------------------------------------------------------------- 3x3, stride 1

// Contribution of one input column (NR rows at p, p + rs, ...) through weight column K of rows k0, k1, k2.
#define COL(A, K, P)                                                \
  A = MADD4(A, wasm_v128_load(P), k0##K);                           \
  if (NR > 1) A = MADD4(A, wasm_v128_load((P) + rs), k1##K);        \
  if (NR > 2) A = MADD4(A, wasm_v128_load((P) + 2 * rs), k2##K);

// n outputs of one row, channels [0, C4) in blocks of 4. x = the first output's window: its first column, row
// ky0; rs = the input row stride; w = weight row ky0; NR = the window rows inside the image (1..3). Every column
// read is inside the image except the first output's first column when lz and the last output's last column
// when rz (neither is read): the usual pad-1 borders run with the interior.
INLINE void dw3s1_run(const f32 *x, long rs, const f32 *w, const f32 *bias, f32 *y, int C, int C4, int n, int lz,
                      int rz, int NR, int form, const Act *act) {
  long C3 = 3L * C;
  for (int c = 0; c < C4; c += 4) {
    v128_t k00 = wasm_v128_load(w + c), k01 = wasm_v128_load(w + C + c), k02 = wasm_v128_load(w + 2 * C + c);
    v128_t k10 = k00, k11 = k00, k12 = k00, k20 = k00, k21 = k00, k22 = k00;
    if (NR > 1) {
      k10 = wasm_v128_load(w + C3 + c); k11 = wasm_v128_load(w + C3 + C + c); k12 = wasm_v128_load(w + C3 + 2 * C + c);
    }
    if (NR > 2) {
      k20 = wasm_v128_load(w + 2 * C3 + c); k21 = wasm_v128_load(w + 2 * C3 + C + c);
      k22 = wasm_v128_load(w + 2 * C3 + 2 * C + c);
    }
    const v128_t b = wasm_v128_load(bias + c);
    const f32 *p = x + c;
    f32 *q = y + c;
    v128_t a0 = b, a1 = b;
    if (!lz) { COL(a0, 0, p) }
    COL(a0, 1, p + C)
    COL(a1, 0, p + C)
    p += 2 * C;
    for (int i = rz; i < n; i++, p += C, q += C) {  // column j+2 closes output j, feeds j+1 and opens j+2
      v128_t a2 = b;
      COL(a0, 2, p)
      COL(a1, 1, p)
      COL(a2, 0, p)
      wasm_v128_store(q, dw_act(a0, act, form));
      a0 = a1;
      a1 = a2;
    }
    if (rz) wasm_v128_store(q, dw_act(a0, act, form));
  }
}

// One small function per window height and activation form: V8 allocates registers per function, and the 9
// weights + 3 sums fit only when nothing else shares the function (inlined into one big function, the same loops
// ran 1.3-1.6x slower).
#define RUN(NR, F)                                                                                               \
  static NOINLINE void dw3s1_run_r##NR##_##F(const f32 *x, long rs, const f32 *w, const f32 *bias, f32 *y,      \
                                             int C, int C4, int n, int lz, int rz, const Act *act) {             \
    dw3s1_run(x, rs, w, bias, y, C, C4, n, lz, rz, NR, F, act);                                                  \
  }
#define RUNS(NR) RUN(NR, 0) RUN(NR, 1) RUN(NR, 2)
RUNS(3) RUNS(2) RUNS(1)
#define CALL(NR, F) dw3s1_run_r##NR##_##F(xt, rs, wr, bias, yt, C, C4, m, l, r, &act)
#define CALLS(NR) (form == DW_ACT_CLAMP ? CALL(NR, 1) : form == DW_ACT_HARDSWISH ? CALL(NR, 2) : CALL(NR, 0))

// 3x3, stride 1 along x (any stride along y, any padding).
static NOINLINE void dw3s1_layer(const DwconvParams *p) {
  const f32 *X = PTR(p->x), *Wt = PTR(p->wt), *bias = PTR(p->bias);
  f32 *Y = PTR(p->y);
  int N = (int)p->n, H = (int)p->h, W = (int)p->w, C = (int)p->c, C4 = C & ~3;
  int sh = (int)p->sh, pt = (int)p->pt, pl = (int)p->pl, OH = (int)p->oh, OW = (int)p->ow;
  Act act = act_read(&p->act);
  int form = dw_act_form(&act);
  long rs = (long)W * C;
  // outputs [oxa, oxb) have all three input columns inside the image; one missing column on either side is
  // left to the run (lz, rz), anything else to dw_pixel
  int oxa = imin(OW, pl), oxb = imax(oxa, imin(OW, W - 2 + pl));
  int lz = oxa > 0 && oxa == pl && W >= 2, rz = oxb < OW && oxb - pl + 2 == W && oxb - pl >= 0;
  int o0 = oxa - lz, o1 = oxb + rz;
  int tile = imax(DW_MIN_TILE, DW_L1_BYTES / (12 * C) - 2);  // outputs per x tile (3 rows x its columns x C)
  for (int n = 0; n < N; n++) {
    const f32 *x = X + (long)n * H * rs;
    for (int oy = 0; oy < OH; oy++) {
      int iy0 = oy * sh - pt;
      int ky0 = imax(0, -iy0), ky1 = imin(3, H - iy0), NR = ky1 - ky0;
      f32 *y = Y + ((long)n * OH + oy) * OW * C;
      int run = NR > 0 && C4 > 0 && o1 > o0;
      for (int ox = 0; ox < OW; ox++) {
        if (run && ox == o0) {
          const f32 *xr = x + (long)(iy0 + ky0) * rs, *wr = Wt + (long)ky0 * 3 * C;
          for (int t = o0; t < o1; t += tile) {
            int m = imin(tile, o1 - t), l = lz && t == o0, r = rz && t + m == o1;
            const f32 *xt = xr + (long)(t - pl) * C;
            f32 *yt = y + (long)t * C;
            if (NR == 3) CALLS(3);
            else if (NR == 2) CALLS(2);
            else CALLS(1);
          }
          if (C4 < C)
            for (int o = o0; o < o1; o++)
              dw_pixel(x, W, C, Wt, 3, bias, y + (long)o * C, C4, iy0, o - pl, ky0, ky1, imax(0, pl - o),
                       imin(3, W - o + pl), &act);
          ox = o1;
          if (ox >= OW) break;
        }
        int ix0 = ox - pl;
        dw_pixel(x, W, C, Wt, 3, bias, y + (long)ox * C, 0, iy0, ix0, ky0, ky1, imax(0, -ix0), imin(3, W - ix0), &act);
      }
    }
  }
}

// ------------------------------------------------------------------------------------------- any K, any stride

// An interior pixel: all T = KH*KW taps inside the image. Tap offsets (in floats, from the window's top-left
// pixel) are computed once per layer; with T constant the tap loop unrolls and the offsets live in locals, so
// the channel loop is only loads, multiplies and adds (2x faster than recomputing each tap's address).
INLINE void dw_interior(const f32 *xw, const int *xoff, const int *woff, const f32 *w, const f32 *bias, f32 *y,
                        int C, int T, const Act *act) {
  int c = 0;
  for (; c + 4 <= C; c += 4) {
    v128_t a0 = wasm_v128_load(bias + c);
    for (int t = 0; t < T; t++) {
      const f32 *xp = xw + xoff[t] + c, *wp = w + woff[t] + c;
      TAP(a0, 0)
    }
    wasm_v128_store(y + c, act4(a0, act));
  }
  for (; c < C; c++) {
    f32 a = bias[c];
    for (int t = 0; t < T; t++) a += xw[xoff[t] + c] * w[woff[t] + c];
    y[c] = act1(a, act);
  }
}

#define MAX_TAPS 49  // kernels up to 7x7 take the offset path; larger ones the clipped path everywhere

INLINE void dw_layer(const DwconvParams *p, int KH, int KW) {
  const f32 *X = PTR(p->x), *Wt = PTR(p->wt), *bias = PTR(p->bias);
  f32 *Y = PTR(p->y);
  int N = (int)p->n, H = (int)p->h, W = (int)p->w, C = (int)p->c;
  int sh = (int)p->sh, sw = (int)p->sw, pt = (int)p->pt, pl = (int)p->pl;
  int OH = (int)p->oh, OW = (int)p->ow;
  Act act = act_read(&p->act);
  int T = KH * KW, xoff[MAX_TAPS], woff[MAX_TAPS];
  int fast = T <= MAX_TAPS;
  for (int t = 0; t < T && fast; t++) {
    xoff[t] = ((t / KW) * W + t % KW) * C;
    woff[t] = t * C;
  }
  for (int n = 0; n < N; n++) {
    const f32 *x = X + (long)n * H * W * C;
    for (int oy = 0; oy < OH; oy++) {
      int iy0 = oy * sh - pt;
      int ky0 = imax(0, -iy0), ky1 = imin(KH, H - iy0);
      f32 *y = Y + ((long)n * OH + oy) * OW * C;
      for (int ox = 0; ox < OW; ox++, y += C) {
        int ix0 = ox * sw - pl;
        int kx0 = imax(0, -ix0), kx1 = imin(KW, W - ix0);
        if (fast && ky0 == 0 && ky1 == KH && kx0 == 0 && kx1 == KW)
          dw_interior(x + ((long)iy0 * W + ix0) * C, xoff, woff, Wt, bias, y, C, T, &act);
        else
          dw_pixel(x, W, C, Wt, KW, bias, y, 0, iy0, ix0, ky0, ky1, kx0, kx1, &act);
      }
    }
  }
}

static NOINLINE void dw_layer_3x3(const DwconvParams *p) { dw_layer(p, 3, 3); }
static NOINLINE void dw_layer_5x5(const DwconvParams *p) { dw_layer(p, 5, 5); }
static NOINLINE void dw_layer_any(const DwconvParams *p) { dw_layer(p, (int)p->kh, (int)p->kw); }

EXPORT void wv_dwconv(const DwconvParams *p) {
  int KH = (int)p->kh, KW = (int)p->kw;
  if (KH == 3 && KW == 3 && p->sw == 1) dw3s1_layer(p);
  else if (KH == 3 && KW == 3 && p->sw == 2 && WV_BUILD == 1 && p->w <= DW3S2_ROWS_MAX_W) dw3s2_layer(p);
  else if (KH == 3 && KW == 3) dw_layer_3x3(p);
  else if (KH == 5 && KW == 5 && p->sw == 1) dw5s1_layer(p);
  else if (KH == 5 && KW == 5 && p->sw == 2) dw5s2_layer(p);
  else if (KH == 5 && KW == 5) dw_layer_5x5(p);
  else dw_layer_any(p);
}
