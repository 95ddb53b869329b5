"""The geometry of a 2-D window op (convolution, pooling) on NHWC tensors, with named fields."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WindowGeometry:
    """Input (n, h, w, c), kernel (kh, kw), strides (sh, sw), dilations (dh, dw), pads (pt, pl, pb, pr) and
    output size (oh, ow) of one node, validated by the op that built it."""
    n: int
    h: int
    w: int
    c: int
    kh: int
    kw: int
    sh: int
    sw: int
    dh: int
    dw: int
    pt: int
    pl: int
    pb: int
    pr: int
    oh: int
    ow: int

    @property
    def padded(self) -> bool:
        return (self.pt, self.pl, self.pb, self.pr) != (0, 0, 0, 0)
