"""The packed GEMM (cpp/src/gemm.cpp) on every instruction set this machine runs: against a
float64 NumPy product, at tile-edge sizes, and bit-for-bit determinism across thread counts,
batch composition, operand layout and column ranges."""

import itertools

import numpy as np
import pytest

import fastgru
from fastgru import _core

DTYPES = [np.float32, np.float64]
EDGE_SIZES = [1, 2, 3, 5, 7, 17, 33, 64, 65, 257]


def operands(rng, M, N, K, ta, tb, dtype):
    A = rng.standard_normal((K, M) if ta else (M, K)).astype(dtype)
    B = rng.standard_normal((N, K) if tb else (K, N)).astype(dtype)
    return A, B


def op(X, t):
    return X.T if t else X


def check_close(C, A, B, ta, tb, beta, C0):
    """|C - exact| within the error bound of a K-term sum in C's precision."""
    a, b = op(A, ta).astype(np.float64), op(B, tb).astype(np.float64)
    exact = a @ b
    scale = np.abs(a) @ np.abs(b)
    if beta != 0:
        exact += beta * C0.astype(np.float64)
        scale += np.abs(beta * C0.astype(np.float64))
    K = a.shape[1]
    eps = np.finfo(C.dtype).eps
    bound = (K + 2) * eps * scale + np.finfo(C.dtype).tiny
    err = np.abs(C.astype(np.float64) - exact)
    assert np.all(err <= bound), f"max error {err.max():.3g}, bound there {bound.flat[err.argmax()]:.3g}"


def gemm(A, B, ta=False, tb=False, beta=0.0, C=None, dtype=None):
    dtype = dtype or A.dtype
    M = A.shape[1] if ta else A.shape[0]
    N = B.shape[0] if tb else B.shape[1]
    if C is None:
        C = np.full((M, N), np.nan, dtype)
    return _core._gemm(A, B, C, ta, tb, beta)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ta,tb", list(itertools.product([False, True], repeat=2)))
def test_edge_sizes_match_numpy(isa, rng, dtype, ta, tb):
    for M, N, K in itertools.product(EDGE_SIZES, EDGE_SIZES, [1, 7, 257]):
        if M * N * K > 65 * 33 * 257:
            continue
        A, B = operands(rng, M, N, K, ta, tb, dtype)
        beta = [0.0, 1.0, 0.5][(M + N + K) % 3]
        C0 = rng.standard_normal((M, N)).astype(dtype)
        C = np.full((M, N), np.nan, dtype) if beta == 0 else C0.copy()
        check_close(gemm(A, B, ta, tb, beta, C), A, B, ta, tb, beta, C0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ta,tb", list(itertools.product([False, True], repeat=2)))
@pytest.mark.parametrize("beta", [0.0, 1.0, 0.5])
def test_large_and_deep_match_numpy(isa, rng, dtype, ta, tb, beta, restore_threads):
    """K beyond one K-block, and M, N large enough to be split over threads."""
    fastgru.set_num_threads(2)
    for M, N, K in [(3, 40, 1000), (150, 70, 600), (300, 530, 97), (700, 33, 257)]:
        A, B = operands(rng, M, N, K, ta, tb, dtype)
        C0 = rng.standard_normal((M, N)).astype(dtype)
        C = np.full((M, N), np.nan, dtype) if beta == 0 else C0.copy()
        check_close(gemm(A, B, ta, tb, beta, C), A, B, ta, tb, beta, C0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_empty_dimensions(isa, rng, dtype):
    C = rng.standard_normal((4, 5)).astype(dtype)
    out = gemm(np.ones((4, 0), dtype), np.ones((0, 5), dtype), beta=0.5, C=C.copy())
    np.testing.assert_array_equal(out, (dtype(0.5) * C).astype(dtype))
    out = gemm(np.ones((4, 0), dtype), np.ones((0, 5), dtype), beta=0.0, C=np.full((4, 5), np.nan, dtype))
    np.testing.assert_array_equal(out, np.zeros((4, 5), dtype))
    assert gemm(np.ones((0, 3), dtype), np.ones((3, 5), dtype)).shape == (0, 5)
    assert gemm(np.ones((4, 3), dtype), np.ones((3, 0), dtype)).shape == (4, 0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_leading_dimensions(isa, rng, dtype):
    """Operands and C as row-strided views; C's columns past N stay untouched."""
    M, N, K = 13, 37, 300
    A = rng.standard_normal((M, K + 9)).astype(dtype)[:, :K]
    B = rng.standard_normal((K, N + 3)).astype(dtype)[:, :N]
    big = np.full((M, N + 5), 7.0, dtype)
    C0 = rng.standard_normal((M, N)).astype(dtype)
    big[:, :N] = C0
    gemm(A, B, beta=0.5, C=big[:, :N])
    check_close(big[:, :N], A, B, False, False, 0.5, C0)
    np.testing.assert_array_equal(big[:, N:], 7.0)
    np.testing.assert_array_equal(gemm(A, B), gemm(np.ascontiguousarray(A), B))


@pytest.mark.parametrize("dtype", DTYPES)
def test_packed_column_ranges(isa, rng, dtype):
    """gemm_packed on a column range: right values inside, nothing written outside, and the
    same bits as gemm() (same kernel, same K-blocks) and as computing all columns at once."""
    width = _core._packed_panel_width()
    assert 32 % width == 0
    for M, N, K, tb in [
        (1, 96, 64, False),
        (7, 257, 300, True),
        (64, 320, 256, True),
        (65, 33, 5, False),
        (3, 17, 1, True),
    ]:
        A = rng.standard_normal((M, K)).astype(dtype)
        B = rng.standard_normal((N, K) if tb else (K, N)).astype(dtype)
        whole = gemm(A, B, tb=tb)
        full = _core._gemm_packed(A, B, 0, N, 0.0, np.full((M, N), np.nan, dtype), tb)
        np.testing.assert_array_equal(full, whole)
        cuts = sorted({0, N, *range(0, N, 32), *rng.integers(0, N + 1, 3).tolist()})
        for n0, n1 in itertools.pairwise(cuts):
            C0 = rng.standard_normal((M, N)).astype(dtype)
            for beta in [0.0, 0.5]:
                C = C0.copy()
                if beta == 0:
                    C[:, n0:n1] = np.nan
                _core._gemm_packed(A, B, n0, n1, beta, C, tb)
                np.testing.assert_array_equal(C[:, :n0], C0[:, :n0])
                np.testing.assert_array_equal(C[:, n1:], C0[:, n1:])
                check_close(C[:, n0:n1], A, op(B, tb)[:, n0:n1], False, False, beta, C0[:, n0:n1])
                if beta == 0:
                    np.testing.assert_array_equal(C[:, n0:n1], whole[:, n0:n1])


@pytest.mark.parametrize("dtype", DTYPES)
def test_same_bits_for_any_thread_count(isa, rng, dtype, restore_threads):
    for (M, N, K), (ta, tb) in zip(
        [(640, 384, 128), (512, 96, 700), (96, 640, 256), (333, 257, 65)], itertools.product([False, True], repeat=2)
    ):
        A, B = operands(rng, M, N, K, ta, tb, dtype)
        C0 = rng.standard_normal((M, N)).astype(dtype)
        results = []
        for n in [1, 2, 3, 7]:
            fastgru.set_num_threads(n)
            results.append((gemm(A, B, ta, tb), gemm(A, B, ta, tb, 0.5, C0.copy())))
        for r in results[1:]:
            np.testing.assert_array_equal(r[0], results[0][0])
            np.testing.assert_array_equal(r[1], results[0][1])


@pytest.mark.parametrize("dtype", DTYPES)
def test_batch_invariance(isa, rng, dtype, restore_threads):
    """A row of C has the same bits whatever other rows A has, and whatever A's layout."""
    fastgru.set_num_threads(2)
    for K, N in [(256, 768), (300, 50), (33, 17)]:
        batch = rng.standard_normal((64, K)).astype(dtype)
        W = rng.standard_normal((N, K)).astype(dtype)
        full = gemm(batch, W, tb=True)
        np.testing.assert_array_equal(gemm(np.ascontiguousarray(batch.T), W, ta=True, tb=True), full)
        np.testing.assert_array_equal(_core._gemm_packed(batch, W, 0, N, 0.0, np.empty((64, N), dtype), True), full)
        for rows in [[0], [5], [63], [7, 8, 9], list(range(13, 30)), list(range(1, 60, 3))]:
            sub = np.ascontiguousarray(batch[rows])
            np.testing.assert_array_equal(gemm(sub, W, tb=True), full[rows])
            np.testing.assert_array_equal(
                _core._gemm_packed(sub, W, 0, N, 0.0, np.empty((len(rows), N), dtype), True), full[rows]
            )


def test_bad_arguments():
    with pytest.raises(ValueError):
        _core._gemm(np.ones((2, 3)), np.ones((4, 5)), np.zeros((2, 5)))
    with pytest.raises(ValueError):
        _core._gemm(np.ones((2, 3)), np.ones((3, 5)), np.zeros((2, 5), np.int32))
    with pytest.raises(ValueError):
        _core._gemm_packed(np.ones((2, 3)), np.ones((3, 5)), 4, 6, 0.0, np.zeros((2, 5)))
    with pytest.raises(ValueError):
        fastgru.set_isa("no-such-isa")
