"""Arrays at a fixed byte boundary (what the pass kernel computes on; a rerun on Dask
giving the same bits is tested in test_routes)."""
from __future__ import annotations

import numpy as np
import pytest

from elasticnet_dist.alignment import ALIGNMENT, aligned


def _at_offset(array, offset):
    """A copy of ``array`` starting ``offset`` bytes past an ALIGNMENT boundary."""
    buffer = np.empty(array.nbytes + 2 * ALIGNMENT, dtype=np.uint8)
    start = -buffer.ctypes.data % ALIGNMENT + offset
    out = buffer[start:start + array.nbytes].view(array.dtype).reshape(array.shape)
    out[...] = array
    return out


@pytest.mark.parametrize("order", ["C", "F"])
def test_aligned_copies_only_what_is_off_the_boundary(order):
    a = np.asfortranarray(np.arange(60.0).reshape(6, 10)) if order == "F" \
        else np.arange(60.0).reshape(6, 10)
    moved = _at_offset(a, 16) if order == "C" else _at_offset(a.T, 16).T
    assert moved.ctypes.data % ALIGNMENT == 16
    fixed = aligned(moved)
    assert fixed.ctypes.data % ALIGNMENT == 0 and np.array_equal(fixed, a)
    assert fixed.flags.f_contiguous == (order == "F")
    assert aligned(fixed) is fixed and aligned(None) is None
