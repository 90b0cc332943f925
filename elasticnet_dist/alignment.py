"""Arrays that start at a fixed byte boundary, so that arithmetic on them gives the
same bits in every process.

BLAS kernels and NumPy's SIMD loops may take other code paths for the same data at
another offset from a cache-line boundary, and an array received from another
process starts wherever its message put it. A logistic cross-validated search on
the pass route gave results 2e-11 apart from one rerun to the next on Dask; with
the kernel computing on fresh aligned copies of each request, reruns give the same
bits (``tests/test_routes.py``). In one process the offsets tried (multiples of 8
bytes) did not change a pass's bits, so which part of the worker's path was at
fault is not pinned down; the copies cost a few p-vectors per pass. Blocks are
aligned once, when they are made.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

#: Byte boundary (a cache line, and the widest SIMD register).
ALIGNMENT = 64


def aligned_empty(shape, dtype):
    """A new C-ordered array that starts at an ALIGNMENT-byte boundary (for results
    that :func:`aligned` would otherwise copy once more)."""
    dtype = np.dtype(dtype)
    size = int(np.prod(shape)) * dtype.itemsize
    buffer = np.empty(size + ALIGNMENT, dtype=np.uint8)
    start = -buffer.ctypes.data % ALIGNMENT
    return buffer[start:start + size].view(dtype).reshape(shape)


def aligned_fortran(array):
    """A column-major copy of the 2-D ``array`` that starts at an ALIGNMENT-byte
    boundary (``np.asfortranarray`` and then :func:`aligned` would copy twice);
    ``array`` itself when it is one already."""
    if array.flags.f_contiguous and array.ctypes.data % ALIGNMENT == 0:
        return array
    out = aligned_empty(array.shape[::-1], array.dtype).T
    out[...] = array
    return out


def aligned(array):
    """``array`` itself when it is contiguous from an ALIGNMENT-byte boundary, else
    such a copy (same shape, dtype and memory order); None stays None."""
    if array is None:
        return None
    if sp.issparse(array):  # a CSR block: each of its three arrays
        return sp.csr_matrix((aligned(array.data), aligned(array.indices),
                              aligned(array.indptr)), shape=array.shape, copy=False)
    array = np.asarray(array)
    fortran = array.flags.f_contiguous and not array.flags.c_contiguous
    if array.ctypes.data % ALIGNMENT == 0 and (array.flags.c_contiguous or fortran):
        return array
    flat = aligned_empty((array.size,), array.dtype)
    out = flat.reshape(array.shape[::-1]).T if fortran else flat.reshape(array.shape)
    out[...] = array
    return out
