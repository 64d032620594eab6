"""ops: gather, segment_sum, neighbour_sum against brute-force float64 loops.

Every primitive: forward vs a numpy loop, all gradients by gradcheck (float64),
odd feature sizes, zero-degree nodes and one node with a huge in-degree.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from weathergnn import ops
from weathergnn.ops import reference


def random_csc(num_src, num_dst, max_degree=4, huge_node=None, huge_degree=0, seed=0):
    """Random destination-sorted edges with some zero-degree receivers.

    Returns (src [E], dst [E], dst_ptr [num_dst + 1]) int64.
    """
    g = torch.Generator().manual_seed(seed)
    deg = torch.randint(0, max_degree + 1, (num_dst,), generator=g)
    deg[0] = 0  # always at least one zero-degree node, first,
    deg[-1] = 0  # and last
    if num_dst > 3:
        deg[num_dst // 2] = 0
    if huge_node is not None:
        deg[huge_node] = huge_degree
    dst = torch.repeat_interleave(torch.arange(num_dst), deg)
    src = torch.randint(0, num_src, (int(deg.sum()),), generator=g)
    dst_ptr = torch.zeros(num_dst + 1, dtype=torch.long)
    dst_ptr[1:] = deg.cumsum(0)
    return src, dst, dst_ptr


def brute_segment_sum(m, dst, n):
    m, dst = m.detach().double().numpy(), dst.numpy()
    out = np.zeros((m.shape[0], n, m.shape[2]))
    for b in range(m.shape[0]):
        for e in range(m.shape[1]):
            out[b, dst[e]] += m[b, e]
    return out


def brute_neighbour_sum(h, src, dst, coeff, n):
    h, src, dst = h.detach().double().numpy(), src.numpy(), dst.numpy()
    c = coeff.detach().double().numpy()
    c = np.broadcast_to(c, (h.shape[0], src.shape[0]))
    out = np.zeros((h.shape[0], n, h.shape[2]))
    for b in range(h.shape[0]):
        for e in range(src.shape[0]):
            out[b, dst[e]] += c[b, e] * h[b, src[e]]
    return out


@pytest.mark.parametrize("features", [7, 13])
def test_gather_forward(features):
    src, dst, _ = random_csc(9, 11)
    x = torch.randn(2, 9, features, dtype=torch.float64)
    out = ops.gather(x, src)
    assert out.shape == (2, src.shape[0], features)
    xn = x.numpy()
    for e in range(src.shape[0]):
        np.testing.assert_array_equal(out[:, e].numpy(), xn[:, src[e]])


def test_gather_gradcheck():
    src, _, _ = random_csc(5, 6)
    x = torch.randn(2, 5, 7, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: ops.gather(x, src), (x,))


@pytest.mark.parametrize("features", [7, 13])
@pytest.mark.parametrize(
    "impl",
    [
        lambda m, ptr, dst, n: ops.segment_sum(m, ptr, dst, n),
        lambda m, ptr, dst, n: reference.segment_sum_index_add(m, dst, n),
        lambda m, ptr, dst, n: reference.segment_sum_segment_reduce(m, ptr),
    ],
    ids=["dispatch", "index_add", "segment_reduce"],
)
def test_segment_sum_forward(features, impl):
    n = 12
    src, dst, ptr = random_csc(8, n, huge_node=4, huge_degree=500)
    m = torch.randn(3, src.shape[0], features, dtype=torch.float64)
    out = impl(m, ptr, dst, n)
    assert out.shape == (3, n, features) and out.dtype == m.dtype
    np.testing.assert_allclose(out.numpy(), brute_segment_sum(m, dst, n), rtol=1e-12, atol=1e-12)
    deg = ptr.diff()
    assert (deg == 0).any()
    assert (out[:, deg == 0] == 0).all()  # zero-degree nodes give zeros


def test_segment_sum_float32_huge_degree():
    n = 5
    src, dst, ptr = random_csc(4, n, huge_node=2, huge_degree=5000)
    m = torch.randn(2, src.shape[0], 13)
    out = ops.segment_sum(m, ptr, dst)  # num_nodes from dst_ptr
    np.testing.assert_allclose(out.numpy(), brute_segment_sum(m, dst, n), rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize(
    "impl",
    [
        lambda m, ptr, dst, n: reference.segment_sum_index_add(m, dst, n),
        lambda m, ptr, dst, n: reference.segment_sum_segment_reduce(m, ptr),
    ],
    ids=["index_add", "segment_reduce"],
)
def test_segment_sum_gradcheck(impl):
    n = 7
    _, dst, ptr = random_csc(5, n, huge_node=3, huge_degree=20)
    m = torch.randn(2, dst.shape[0], 7, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda m: impl(m, ptr, dst, n), (m,))


def test_segment_sum_no_edges():
    ptr = torch.zeros(4, dtype=torch.long)
    dst = torch.zeros(0, dtype=torch.long)
    m = torch.randn(2, 0, 7, requires_grad=True)
    out = ops.segment_sum(m, ptr, dst, 3)
    assert out.shape == (2, 3, 7) and (out == 0).all()
    out.sum().backward()
    assert m.grad.shape == m.shape


@pytest.mark.parametrize("features", [7, 13])
@pytest.mark.parametrize("batched_coeff", [False, True])
def test_neighbour_sum_forward(features, batched_coeff):
    ns, nd = 10, 9
    src, dst, ptr = random_csc(ns, nd, huge_node=5, huge_degree=400)
    h = torch.randn(2, ns, features, dtype=torch.float64)
    shape = (2, src.shape[0]) if batched_coeff else (src.shape[0],)
    coeff = torch.randn(shape, dtype=torch.float64)
    out = ops.neighbour_sum(h, adjacency(src, dst, ptr, ns), coeff)
    assert out.shape == (2, nd, features)
    np.testing.assert_allclose(
        out.numpy(), brute_neighbour_sum(h, src, dst, coeff, nd), rtol=1e-12, atol=1e-12
    )
    assert (out[:, ptr.diff() == 0] == 0).all()


@pytest.mark.parametrize("batched_coeff", [False, True])
def test_neighbour_sum_gradcheck(batched_coeff):
    ns, nd = 6, 7
    src, dst, ptr = random_csc(ns, nd, huge_node=2, huge_degree=15)
    h = torch.randn(2, ns, 7, dtype=torch.float64, requires_grad=True)
    shape = (2, src.shape[0]) if batched_coeff else (src.shape[0],)
    coeff = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda h, c: ops.neighbour_sum(h, adjacency(src, dst, ptr, ns), c), (h, coeff)
    )


def test_neighbour_sum_mixed_dtype_follows_h():
    src, dst, ptr = random_csc(5, 6)
    h = torch.randn(1, 5, 7, dtype=torch.bfloat16)
    coeff = torch.rand(src.shape[0])  # float32, as under autocast
    out = ops.neighbour_sum(h, adjacency(src, dst, ptr, 5), coeff)
    assert out.dtype == torch.bfloat16
    ref = brute_neighbour_sum(h.float(), src, dst, coeff.bfloat16().float(), 6)
    np.testing.assert_allclose(out.float().numpy(), ref, rtol=2e-2, atol=2e-2)


def adjacency(src, dst, ptr, num_src):
    """Adjacency of already destination-sorted edges (keeps their order)."""
    adj = ops.Adjacency.from_edges(src, dst, num_src, ptr.shape[0] - 1)
    assert torch.equal(adj.src, src) and torch.equal(adj.dst_ptr, ptr)
    return adj


def test_backend_selection(monkeypatch):
    assert ops.resolve_backend("auto", "cpu") == "torch"  # auto picks Triton only for CUDA tensors
    assert ops.resolve_backend("torch") == "torch"
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(RuntimeError, match="triton"):
        ops.resolve_backend("triton", "cpu")
    with pytest.raises(RuntimeError, match="TRITON_INTERPRET"):
        ops.gather(torch.zeros(1, 2, 3), torch.zeros(1, dtype=torch.long), backend="triton")
    with pytest.raises(ValueError, match="unknown"):
        ops.resolve_backend("cuda")


def test_segment_sum_rejects_wrong_num_nodes():
    _, dst, ptr = random_csc(4, 5)
    with pytest.raises(ValueError, match="num_nodes"):
        ops.segment_sum(torch.zeros(1, dst.shape[0], 3), ptr, dst, 6)
