// im2col by rows: the GEMM gathers one block of rows at a time (gemm.c) while it is in L1.
#ifndef WVIM2COL_H
#define WVIM2COL_H

#include "wvsimd.h"

// Output pixels [p0, p1) (flattened over n, oy, ox) into cols, one row of KH*KW*Cg floats each.
void im2col_rows(const Im2colParams *p, long p0, long p1, f32 *cols);

#endif
