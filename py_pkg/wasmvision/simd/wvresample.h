// Parameter structs of the preprocessing kernels (resample.c), mirrored field for field by the ctypes
// Structures in preprocess_ops.py. Every field is 4 bytes on wasm32 (pointers included), so there is no padding;
// each kernel exports its struct's size and the binding refuses a library whose sizes differ.
#ifndef WVRESAMPLE_H
#define WVRESAMPLE_H

#include "wvsimd.h"

// Pillow's fixed point: weights carry 22 fraction bits; sums start at half a step (round to nearest).
#define WV_PRECISION_BITS (32 - 8 - 2)
#define WV_HALF (1 << (WV_PRECISION_BITS - 1))

// Per kept output of one axis: its first input index, how many taps, and `ksize` int32 weights (the first
// `count` used). Only nonzero taps are listed: the integer sum is Pillow's exactly.
typedef struct {
  const int32_t *first;
  const int32_t *count;
  const int32_t *coeffs;  // (outputs, ksize)
  uint32_t ksize;
  // The same weights split for i32x4.dot_i16x8_s (22-bit weights do not fit in 16): per output, `pairs` groups
  // of 4 int16 (hi(w0), hi(w1), lo(w0), lo(w1)) over consecutive taps, w = hi * 2^WV_SPLIT_BITS + lo exactly.
  const int16_t *split;   // (outputs, pairs, 4), NULL where a kernel does not use it
  uint32_t pairs;
} wv_taps;

#define WV_SPLIT_BITS 11

// Horizontal pass, uint8 -> uint8. Input pixels are `src_pixel` bytes apart, output pixels `channels` bytes
// (the c4 tile: 4 and 4, every byte filtered; c3: 3 and 4; the cn tile: the first `channels` bytes of each pixel).
typedef struct {
  const uint8_t *src;
  uint32_t src_row;    // bytes between input rows
  uint32_t src_pixel;  // bytes between input pixels
  uint8_t *dst;
  uint32_t dst_row;    // bytes between output rows
  uint32_t rows;
  uint32_t cols;       // output pixels per row
  uint32_t channels;
  wv_taps taps;        // one per output column
} wv_resample_h_params;

// Vertical pass, uint8 -> uint8, on `bytes` contiguous bytes of each row (pixel layout does not matter).
typedef struct {
  const uint8_t *src;
  uint32_t src_row;
  uint8_t *dst;
  uint32_t dst_row;
  uint32_t rows;   // output rows
  uint32_t bytes;  // bytes per row
  wv_taps taps;    // one per output row
} wv_resample_v_params;

// uint8 pixels -> the network's float32 input through a (3, 256) table (scaling and normalisation of the
// preprocessing kind), output channel c read from byte chan[c] of each pixel; any output layout (strides in floats).
typedef struct {
  const uint8_t *src;
  uint32_t src_row;
  uint32_t src_pixel;
  uint32_t chan[3];
  f32 *dst;
  uint32_t dst_row;
  uint32_t dst_col;
  uint32_t dst_chan;
  uint32_t rows;
  uint32_t cols;
  const f32 *table;  // (3, 256)
} wv_store_f32_params;

#endif
