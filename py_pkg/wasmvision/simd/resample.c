// Preprocessing kernels: Pillow's fixed-point bilinear resample, one pass per call, on the rows and columns the
// caller keeps, and the store of the kept pixels into the network's float32 input. The binding
// (preprocess_ops.py) chooses the pass order and computes the weights, with the numpy path's own code.
#include "wvresample.h"

EXPORT int wv_resample_h_params_size(void) { return sizeof(wv_resample_h_params); }
EXPORT int wv_resample_v_params_size(void) { return sizeof(wv_resample_v_params); }
EXPORT int wv_store_f32_params_size(void) { return sizeof(wv_store_f32_params); }

// Pillow's clip8 on four sums: shift out the fraction, saturate to 0..255, the four bytes in lane 0.
INLINE v128_t clip8_4(v128_t acc) {
  v128_t v = wasm_i32x4_shr(acc, WV_PRECISION_BITS);
  v128_t w = wasm_i16x8_narrow_i32x4(v, v);
  return wasm_u8x16_narrow_i16x8(w, w);
}

INLINE uint8_t clip8_1(int32_t acc) {
  int32_t v = acc >> WV_PRECISION_BITS;
  return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

INLINE v128_t widen4(const uint8_t *p) {  // 4 bytes -> i32x4
  return wasm_u32x4_extend_low_u16x8(wasm_u16x8_extend_low_u8x16(wasm_v128_load32_zero(p)));
}

// Horizontal, 4-byte pixels (RGBA; alpha is filtered too and dropped by the store): one i32x4 per pixel.
// Two rows at a time share each tap's weight.
EXPORT void wv_resample_h_u8_c4(const wv_resample_h_params *p) {
  const wv_taps *t = &p->taps;
  uint32_t y = 0;
  for (; y + 2 <= p->rows; y += 2) {
    const uint8_t *s0 = p->src + (uintptr_t)y * p->src_row, *s1 = s0 + p->src_row;
    uint8_t *d0 = p->dst + (uintptr_t)y * p->dst_row, *d1 = d0 + p->dst_row;
    for (uint32_t x = 0; x < p->cols; x++) {
      const int32_t *k = t->coeffs + (uintptr_t)x * t->ksize;
      const uint8_t *a = s0 + 4 * t->first[x], *b = s1 + 4 * t->first[x];
      v128_t acc0 = wasm_i32x4_splat(WV_HALF), acc1 = acc0;
      for (int32_t i = 0, n = t->count[x]; i < n; i++) {
        v128_t w = wasm_i32x4_splat(k[i]);
        acc0 = wasm_i32x4_add(acc0, wasm_i32x4_mul(widen4(a + 4 * i), w));
        acc1 = wasm_i32x4_add(acc1, wasm_i32x4_mul(widen4(b + 4 * i), w));
      }
      wasm_v128_store32_lane(d0 + 4 * x, clip8_4(acc0), 0);
      wasm_v128_store32_lane(d1 + 4 * x, clip8_4(acc1), 0);
    }
  }
  for (; y < p->rows; y++) {
    const uint8_t *s0 = p->src + (uintptr_t)y * p->src_row;
    uint8_t *d0 = p->dst + (uintptr_t)y * p->dst_row;
    for (uint32_t x = 0; x < p->cols; x++) {
      const int32_t *k = t->coeffs + (uintptr_t)x * t->ksize;
      const uint8_t *a = s0 + 4 * t->first[x];
      v128_t acc0 = wasm_i32x4_splat(WV_HALF);
      for (int32_t i = 0, n = t->count[x]; i < n; i++)
        acc0 = wasm_i32x4_add(acc0, wasm_i32x4_mul(widen4(a + 4 * i), wasm_i32x4_splat(k[i])));
      wasm_v128_store32_lane(d0 + 4 * x, clip8_4(acc0), 0);
    }
  }
}

// Horizontal, 3-byte pixels (RGB) into 4-byte pixels (the fourth byte is not used): the c4 tile's arithmetic,
// each pixel loaded as 4 bytes except each output's last tap, which must not read past the image's last byte.
INLINE v128_t widen3(const uint8_t *p) { return wasm_i32x4_make(p[0], p[1], p[2], 0); }

EXPORT void wv_resample_h_u8_c3(const wv_resample_h_params *p) {
  const wv_taps *t = &p->taps;
  for (uint32_t y = 0; y < p->rows; y++) {
    const uint8_t *s = p->src + (uintptr_t)y * p->src_row;
    uint8_t *d = p->dst + (uintptr_t)y * p->dst_row;
    for (uint32_t x = 0; x < p->cols; x++) {
      const int32_t *k = t->coeffs + (uintptr_t)x * t->ksize;
      const uint8_t *a = s + 3 * t->first[x];
      int32_t n = t->count[x], i = 0;
      v128_t acc = wasm_i32x4_splat(WV_HALF);
      for (; i + 1 < n; i++) acc = wasm_i32x4_add(acc, wasm_i32x4_mul(widen4(a + 3 * i), wasm_i32x4_splat(k[i])));
      if (i < n) acc = wasm_i32x4_add(acc, wasm_i32x4_mul(widen3(a + 3 * i), wasm_i32x4_splat(k[i])));
      wasm_v128_store32_lane(d + 4 * x, clip8_4(acc), 0);
    }
  }
}

// Horizontal, any pixel stride, the first `channels` (1..4) bytes of each pixel: gray, gray+alpha.
EXPORT void wv_resample_h_u8_cn(const wv_resample_h_params *p) {
  const wv_taps *t = &p->taps;
  uint32_t ps = p->src_pixel, nc = p->channels;
  for (uint32_t y = 0; y < p->rows; y++) {
    const uint8_t *s = p->src + (uintptr_t)y * p->src_row;
    uint8_t *d = p->dst + (uintptr_t)y * p->dst_row;
    for (uint32_t x = 0; x < p->cols; x++) {
      const int32_t *k = t->coeffs + (uintptr_t)x * t->ksize;
      const uint8_t *a = s + ps * t->first[x];
      int32_t n = t->count[x];
      for (uint32_t c = 0; c < nc; c++) {
        int32_t acc = WV_HALF;
        for (int32_t i = 0; i < n; i++) acc += (int32_t)a[ps * i + c] * k[i];
        d[nc * x + c] = clip8_1(acc);
      }
    }
  }
}

// Vertical: 16 bytes of a row at a time in four i32x4 sums, every tap's row streamed past.
EXPORT void wv_resample_v_u8(const wv_resample_v_params *p) {
  const wv_taps *t = &p->taps;
  uint32_t sr = p->src_row, nb = p->bytes;
  for (uint32_t y = 0; y < p->rows; y++) {
    const int32_t *k = t->coeffs + (uintptr_t)y * t->ksize;
    const uint8_t *s = p->src + (uintptr_t)t->first[y] * sr;
    uint8_t *d = p->dst + (uintptr_t)y * p->dst_row;
    int32_t n = t->count[y];
    uint32_t j = 0;
    for (; j + 16 <= nb; j += 16) {
      v128_t a0 = wasm_i32x4_splat(WV_HALF), a1 = a0, a2 = a0, a3 = a0;
      for (int32_t i = 0; i < n; i++) {
        v128_t v = wasm_v128_load(s + (uintptr_t)i * sr + j);
        v128_t lo = wasm_u16x8_extend_low_u8x16(v), hi = wasm_u16x8_extend_high_u8x16(v);
        v128_t w = wasm_i32x4_splat(k[i]);
        a0 = wasm_i32x4_add(a0, wasm_i32x4_mul(wasm_u32x4_extend_low_u16x8(lo), w));
        a1 = wasm_i32x4_add(a1, wasm_i32x4_mul(wasm_u32x4_extend_high_u16x8(lo), w));
        a2 = wasm_i32x4_add(a2, wasm_i32x4_mul(wasm_u32x4_extend_low_u16x8(hi), w));
        a3 = wasm_i32x4_add(a3, wasm_i32x4_mul(wasm_u32x4_extend_high_u16x8(hi), w));
      }
      a0 = wasm_i32x4_shr(a0, WV_PRECISION_BITS); a1 = wasm_i32x4_shr(a1, WV_PRECISION_BITS);
      a2 = wasm_i32x4_shr(a2, WV_PRECISION_BITS); a3 = wasm_i32x4_shr(a3, WV_PRECISION_BITS);
      wasm_v128_store(d + j, wasm_u8x16_narrow_i16x8(wasm_i16x8_narrow_i32x4(a0, a1), wasm_i16x8_narrow_i32x4(a2, a3)));
    }
    for (; j < nb; j++) {
      int32_t acc = WV_HALF;
      for (int32_t i = 0; i < n; i++) acc += (int32_t)s[(uintptr_t)i * sr + j] * k[i];
      d[j] = clip8_1(acc);
    }
  }
}

// The kept pixels into the network's input: one table lookup per value, written where the layout says.
EXPORT void wv_store_f32(const wv_store_f32_params *p) {
  const f32 *t0 = p->table, *t1 = t0 + 256, *t2 = t1 + 256;
  uint32_t c0 = p->chan[0], c1 = p->chan[1], c2 = p->chan[2], dc = p->dst_chan;
  for (uint32_t y = 0; y < p->rows; y++) {
    const uint8_t *s = p->src + (uintptr_t)y * p->src_row;
    f32 *d = p->dst + (uintptr_t)y * p->dst_row;
    for (uint32_t x = 0; x < p->cols; x++, s += p->src_pixel, d += p->dst_col) {
      d[0] = t0[s[c0]];
      d[dc] = t1[s[c1]];
      d[2 * dc] = t2[s[c2]];
    }
  }
}
