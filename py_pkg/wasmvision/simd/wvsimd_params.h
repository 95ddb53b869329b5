// The kernels' parameter structs, one per entry point, filled once per plan by the Python binding
// (descriptors.py mirrors each field; layout.c exports the offsets it is checked against). Only <stdint.h>, so
// the host compiler can build layout.c too; addresses are wasm32 offsets held as uint32_t for the same reason.
#ifndef WVSIMD_PARAMS_H
#define WVSIMD_PARAMS_H

#include <stdint.h>

#define EXPORT __attribute__((visibility("default")))

// Fused activations. Sigmoid is not here: numpy applies it after the kernel (no vector exp in this library).
enum { ACT_NONE = 0, ACT_CLIP = 1, ACT_HARDSWISH = 2, ACT_HARDSIGMOID = 3 };

// The epilogue every kernel with an output ends with: clip bounds (lo, hi); hard* slope and offset (alpha, beta).
typedef struct {
  uint32_t kind;
  float lo, hi, alpha, beta;
} ActParams;

// C[M,N] = act(A[M,K] @ B + bias): A and C row-strided (lda, ldc in floats), B packed in 8-wide panels.
// gather: 0, or the address of an Im2colParams whose windows are A's rows: each block of mc rows is then gathered
// into a (the block's buffer, mc x lda floats) just before it is multiplied, while it is still in L1.
// res: 0, or a residual R (M, N), row stride ldr: then C = act(A @ B + bias + R) (a projection and its residual add).
// row0: with a gather, the window (output pixel) of A's first row (a band of a larger conv; see PwDwParams).
typedef struct {
  uint32_t a, lda, bp, bias, c, ldc, m, k, n, mc, gather;
  ActParams act;
  uint32_t res, ldr, row0;
} GemmParams;

// Depthwise conv: x (N,H,W,C), wt (KH,KW,C), bias (C), y (N,OH,OW,C), all C-contiguous; pads top/left.
typedef struct {
  uint32_t x, wt, bias, y, n, h, w, c, kh, kw, sh, sw, pt, pl, oh, ow;
  ActParams act;
} DwconvParams;

// im2col of channels [c0, c0+cg) of x (N,H,W,C) into cols (N*OH*OW, KH*KW*cg), zeros for the padding.
typedef struct {
  uint32_t x, cols, n, h, w, c, kh, kw, sh, sw, dh, dw, pt, pl, oh, ow, c0, cg;
} Im2colParams;

// A conv run as a GEMM (pw: its GemmParams over the whole input, c unused; a 1x1 conv, or one whose windows the
// GEMM gathers, like the stem) and the depthwise conv of its output
// (dw: its DwconvParams, x unused), run by bands of band_oh output rows through band (the expanded rows of one
// band: ((band_oh - 1) * sh + kh) * w * c floats).
typedef struct {
  uint32_t pw, dw, band, band_oh;
} PwDwParams;

// Global average pool: x (N, P, C) C-contiguous -> y (N, C); inv = 1/P.
typedef struct {
  uint32_t x, y, n, p, c;
  float inv;
} GapParams;

#endif
