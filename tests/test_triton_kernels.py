"""Fused Triton kernels against their plain-torch references: forward and every gradient.

Runs on a CUDA device when there is one, else on CPU tensors through the Triton
interpreter (``TRITON_INTERPRET=1``, set by conftest.py), which is how CI
checks the kernels. Graphs are tiny but hostile: receivers and senders with no
edges, one receiver with a huge in-degree, one sender with a huge out-degree,
feature widths that are not powers of two (and wider than one feature block
under the interpreter). float32 results are compared with a float64 reference
to tight tolerance; bfloat16 results must stay within an error budget: their
error against the float64 reference at most ``BUDGET`` times the error of the
same computation done by plain torch in bfloat16 (flash-attention's test rule).
"""

from __future__ import annotations

import pytest
import torch

from module_compare import compare_modules

from weathergnn.models.graph_model import EncodeProcessDecode
from weathergnn.models.processors import EdgeBuffers, FusedLayer, InteractionLayer
from weathergnn.ops import Adjacency, dispatch
from weathergnn.ops import triton as triton_backend

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
pytestmark = pytest.mark.skipif(
    not triton_backend.available(DEVICE), reason=triton_backend.unavailable_reason(DEVICE) or "n/a"
)
BUDGET = 2.0
WIDTHS = [1, 13, 37]


def hostile_graph(num_src=9, num_dst=11, seed=0, huge_in=40, huge_out=30) -> Adjacency:
    """Random edges with zero-degree nodes on both sides and two huge-degree nodes."""
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(1, num_src - 1, (25,), generator=g)  # senders 0 and last: only via huge_out
    dst = torch.randint(2, num_dst - 2, (25,), generator=g)  # receivers 0, 1, last two: empty ...
    src = torch.cat([src, torch.randint(0, num_src, (huge_in,), generator=g), torch.zeros(huge_out, dtype=torch.long)])
    dst = torch.cat([dst, torch.full((huge_in,), 5), torch.randint(2, num_dst - 2, (huge_out,), generator=g)])
    src[src == num_src - 1] = 1  # ... and sender num_src - 1 sends nothing
    adj = Adjacency.from_edges(src, dst, num_src, num_dst)
    assert (adj.dst_ptr.diff() == 0).sum() >= 4 and (adj.src_ptr.diff() == 0).sum() >= 1
    return adj.to(DEVICE)


def rand(*shape, dtype=torch.float32, grad=True):
    return torch.randn(*shape, device=DEVICE, dtype=dtype).requires_grad_(grad)


def run(fn, inputs, grad_out_seed=0):
    """Output and gradients of every floating input for a fixed random upstream gradient."""
    out = fn(*inputs)
    g = torch.randn(out.shape, generator=torch.Generator().manual_seed(grad_out_seed)).to(out)
    leaves = [x for x in inputs if isinstance(x, torch.Tensor) and x.requires_grad]
    grads = torch.autograd.grad(out, leaves, g)
    return [out.detach()] + [gr.detach() for gr in grads]


def as64(inputs):
    return [x.detach().double().requires_grad_(x.requires_grad) if isinstance(x, torch.Tensor) and x.is_floating_point() else x for x in inputs]


def check_fp32(fn_fast, fn_ref, inputs, rtol=1e-5, atol=1e-5):
    fast = run(fn_fast, inputs)
    ref = run(fn_ref, as64(inputs))
    assert len(fast) == len(ref)
    for k, (a, b) in enumerate(zip(fast, ref)):
        torch.testing.assert_close(a.double(), b, rtol=rtol, atol=atol, msg=lambda m: f"output/grad {k}: {m}")


def check_bf16_budget(fn_fast, fn_ref, inputs32):
    """Error of the fast bf16 result vs float64 <= BUDGET x error of torch in bf16 + one bf16 ulp.

    The ulp floor (2**-7 of the largest magnitude) is there because the Triton
    interpreter rounds float32 -> bfloat16 toward zero where the GPU rounds to
    nearest; with that floor both pass, and anything beyond rounding fails.
    """
    bf = [x.detach().bfloat16().requires_grad_(x.requires_grad) if x.is_floating_point() else x for x in inputs32]
    exact = run(fn_ref, as64(bf))
    fast = run(fn_fast, bf)
    torch_bf = run(fn_ref, bf)
    for k, (f, t, e) in enumerate(zip(fast, torch_bf, exact)):
        err_fast = (f.double() - e).abs().max().item()
        err_torch = (t.double() - e).abs().max().item()
        scale = e.abs().max().item()
        assert err_fast <= BUDGET * err_torch + 2**-7 * scale, f"output/grad {k}: {err_fast} vs torch {err_torch}"


# ------------------------------------------------------------------ segment_sum


@pytest.mark.parametrize("features", WIDTHS)
def test_segment_sum(features):
    adj = hostile_graph()
    m = rand(2, adj.num_edges, features)
    fast = lambda m: dispatch.segment_sum(m, adj.dst_ptr, adj.dst, backend="triton")
    ref = lambda m: dispatch.segment_sum(m, adj.dst_ptr, adj.dst, backend="torch")
    check_fp32(fast, ref, [m])
    out = fast(m)
    assert (out[:, adj.dst_ptr.diff() == 0] == 0).all()


def test_segment_sum_bf16_budget():
    adj = hostile_graph(seed=1)
    m = rand(2, adj.num_edges, 13)
    check_bf16_budget(
        lambda m: dispatch.segment_sum(m, adj.dst_ptr, adj.dst, backend="triton"),
        lambda m: dispatch.segment_sum(m, adj.dst_ptr, adj.dst, backend="torch"),
        [m],
    )


def test_segment_sum_no_edges():
    adj = Adjacency.from_edges(torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long), 3, 4).to(DEVICE)
    out = dispatch.segment_sum(torch.zeros(1, 0, 5, device=DEVICE), adj.dst_ptr, adj.dst, backend="triton")
    assert out.shape == (1, 4, 5) and (out == 0).all()


# ------------------------------------------------------------------ neighbour_sum


@pytest.mark.parametrize("features", WIDTHS)
@pytest.mark.parametrize("coeff_kind", ["none", "shared", "batched"])
def test_neighbour_sum(features, coeff_kind):
    adj = hostile_graph(seed=2)
    h = rand(2, adj.num_src, features)
    inputs = [h]
    if coeff_kind == "shared":
        inputs.append(rand(adj.num_edges))
    elif coeff_kind == "batched":
        inputs.append(rand(2, adj.num_edges))

    def fn(backend):
        return lambda h, c=None: dispatch.neighbour_sum(h, adj, c, backend=backend)

    check_fp32(fn("triton"), fn("torch"), inputs)


def test_neighbour_sum_bf16_budget():
    adj = hostile_graph(seed=3)
    h, c = rand(2, adj.num_src, 37), rand(adj.num_edges)
    check_bf16_budget(
        lambda h, c: dispatch.neighbour_sum(h, adj, c, backend="triton"),
        lambda h, c: dispatch.neighbour_sum(h, adj, c, backend="torch"),
        [h, c],
    )


# ------------------------------------------------------------------ gather_add_silu


@pytest.mark.parametrize("features", WIDTHS)
@pytest.mark.parametrize("static_edges", [False, True])
def test_gather_add_silu(features, static_edges):
    adj = hostile_graph(seed=4)
    x = rand(adj.num_edges, features) if static_edges else rand(2, adj.num_edges, features)
    ps, pd = rand(2, adj.num_src, features), rand(2, adj.num_dst, features)

    def fn(backend):
        return lambda x, ps, pd: dispatch.gather_add_silu(x, ps, pd, adj, backend=backend)

    check_fp32(fn("triton"), fn("torch"), [x, ps, pd])


def test_gather_add_silu_bf16_budget():
    adj = hostile_graph(seed=5)
    x, ps, pd = rand(2, adj.num_edges, 13), rand(2, adj.num_src, 13), rand(2, adj.num_dst, 13)
    check_bf16_budget(
        lambda *a: dispatch.gather_add_silu(*a, adj, backend="triton"),
        lambda *a: dispatch.gather_add_silu(*a, adj, backend="torch"),
        [x, ps, pd],
    )


# ------------------------------------------------------------------ edge_linear (GEMM-fused edge MLP)


def edge_linear_cases(static_edges, l_in, hidden, dtype, seed=0):
    """(name, triton fn, reference fn, inputs) for the three edge_linear modes on a hostile graph."""
    from weathergnn.ops import reference
    from weathergnn.ops.triton import edge_linear as el

    adj = hostile_graph(seed=7 + seed)
    torch.manual_seed(seed)
    r = lambda *s: rand(*s, grad=False).to(dtype)  # noqa: E731
    e = r(adj.num_edges, l_in) if static_edges else r(2, adj.num_edges, l_in)
    w1, b1, w2, b2 = r(hidden, l_in), r(hidden), r(l_in, hidden), r(l_in)
    ps, pd = r(2, adj.num_src, hidden), r(2, adj.num_dst, hidden)
    pre = r(2, adj.num_edges, hidden)
    gy, g_out, g_agg = r(2, adj.num_edges, l_in), r(2, adj.num_edges, l_in), r(2, adj.num_dst, l_in)
    g_pre = r(adj.num_edges, hidden) if static_edges else r(2, adj.num_edges, hidden)
    return [
        ("gather_silu", el.linear_gather_add_silu, reference.linear_gather_add_silu,
         (e, w1, b1, ps, pd, adj.src, adj.dst)),
        ("gather_silu_nobias", el.linear_gather_add_silu, reference.linear_gather_add_silu,
         (e, w1, None, ps, pd, adj.src, adj.dst)),
        ("gather_add", el.linear_gather_add, reference.linear_gather_add, (e, w1, b1, ps, pd, adj.src, adj.dst)),
        ("silu_linear", el.silu_linear, reference.silu_linear, (pre, w2, b2)),
        ("silu_linear_nobias", el.silu_linear, reference.silu_linear, (pre, w2, None)),
        ("dsilu", el.linear_silu_backward, reference.linear_silu_backward, (gy, w2, pre)),
        ("residual", el.linear_residual_backward, reference.linear_residual_backward,
         (g_pre, w2.t().contiguous(), g_out, g_agg, adj.dst, 2)),
        ("residual_agg_only", el.linear_residual_backward, reference.linear_residual_backward,
         (g_pre, w2.t().contiguous(), None, g_agg, adj.dst, 2)),
        ("residual_out_only", el.linear_residual_backward, reference.linear_residual_backward,
         (g_pre, w2.t().contiguous(), g_out, None, adj.dst, 2)),
    ]


def _outputs(fn, args):
    out = fn(*args)
    return list(out) if isinstance(out, tuple) else [out]


@pytest.fixture(params=["pointer", "tma", "tma-ws"])
def edge_linear_kernel(request, monkeypatch):
    """Run the edge_linear tests through the pointer kernel and through the persistent TMA kernel.

    ``tma-ws``: the TMA kernel with its tile loop warp-specialised (ninth configuration entry).
    """
    from weathergnn.ops.triton import edge_linear as el
    from weathergnn.ops.triton import edge_linear_tma

    monkeypatch.setattr(el, "TMA", request.param != "pointer")
    if request.param == "tma-ws":
        cfg = (16, 32, 16, 1, 1, 2, 1, 0, 1) if DEVICE.type != "cuda" else (64, 64, 64, 4, 3, 2, 1, 0, 1)
        keys = (el.MODE_GATHER_SILU, el.MODE_DSILU, el.MODE_RESIDUAL, el.MODE_PLAIN, el.KEY_SILU_IN)
        monkeypatch.setattr(el, "TUNE_TMA", {k: cfg for k in keys})
    launches = []
    real = edge_linear_tma.launch
    monkeypatch.setattr(edge_linear_tma, "launch", lambda *a, **k: (launches.append(a[0]), real(*a, **k)))
    return request.param.split("-")[0], launches


@pytest.mark.parametrize("static_edges", [False, True])
@pytest.mark.parametrize("l_in,hidden", [(13, 37), (37, 1), (20, 17), (32, 48), (48, 64)])  # last two: TMA-able
def test_edge_linear_fp32(static_edges, l_in, hidden, edge_linear_kernel):
    """Each fused GEMM mode against its float64 reference: odd widths, K and N not block multiples."""
    kernel, launches = edge_linear_kernel
    for name, fast, ref, args in edge_linear_cases(static_edges, l_in, hidden, torch.float32):
        for k, (a, b) in enumerate(zip(_outputs(fast, args), _outputs(ref, as64(args)))):
            torch.testing.assert_close(a.double(), b, rtol=1e-5, atol=1e-5, msg=lambda m: f"{name} output {k}: {m}")
    # the TMA kernel takes every call whose widths it can feed (multiples of 16 bytes and of the tile), and no other
    aligned = l_in % 16 == 0 and hidden % 16 == 0
    assert len(launches) == (9 if kernel == "tma" and aligned else 0)


@pytest.mark.parametrize("static_edges", [False, True])
@pytest.mark.parametrize("l_in,hidden", [(24, 40), (32, 64)])
def test_edge_linear_bf16_budget(static_edges, l_in, hidden, edge_linear_kernel):
    """bf16 error against float64 at most BUDGET x that of torch's bf16 matmul path, plus one ulp."""
    for name, fast, ref, args in edge_linear_cases(static_edges, l_in, hidden, torch.bfloat16, seed=1):
        exact = _outputs(ref, as64(args))
        for k, (f, t, x) in enumerate(zip(_outputs(fast, args), _outputs(ref, args), exact)):
            err_fast, err_torch = (f.double() - x).abs().max().item(), (t.double() - x).abs().max().item()
            assert err_fast <= BUDGET * err_torch + 2**-7 * x.abs().max().item(), f"{name} {k}: {err_fast} vs {err_torch}"


HOPPER = DEVICE.type == "cuda" and torch.cuda.get_device_capability(DEVICE)[0] == 9
needs_hopper = pytest.mark.skipif(not HOPPER, reason="the Gluon kernels need a Hopper GPU (Gluon has no interpreter)")


def _random_edges(num_src, num_dst, num_edges, seed):
    g = torch.Generator().manual_seed(seed)
    dst = torch.sort(torch.randint(0, num_dst, (num_edges,), generator=g)).values
    src = torch.randint(0, num_src, (num_edges,), generator=g)
    return src.to(DEVICE), dst.to(DEVICE)


@needs_hopper
@pytest.mark.parametrize("static_edges", [False, True])
@pytest.mark.parametrize("num_edges,l_in,hidden,bias", [(95, 256, 256, True), (20_037, 256, 512, False)])
def test_edge_linear_gluon_bf16_budget(static_edges, num_edges, l_in, hidden, bias, monkeypatch):
    """The Gluon kernels (one batch, K % 64, N % 256), each against float64 and against the TMA kernel: forward
    gather, SiLU on load, SiLU-derivative and residual products; a partial last tile, and many tiles per SM."""
    from weathergnn.ops import reference
    from weathergnn.ops.triton import edge_linear as el
    from weathergnn.ops.triton import edge_linear_gluon

    calls = []
    for name in ("gather_linear", "silu_linear", "dsilu_linear", "residual_linear"):
        real = getattr(edge_linear_gluon, name)
        monkeypatch.setattr(edge_linear_gluon, name,
                            lambda *a, _n=name, _f=real, **k: (calls.append(_n), _f(*a, **k))[1])
    src, dst = _random_edges(300, 7000, num_edges, seed=3)
    torch.manual_seed(3)
    r = lambda *s: rand(*s, grad=False).bfloat16()  # noqa: E731
    e = r(num_edges, l_in) if static_edges else r(1, num_edges, l_in)
    w1, b1, w2 = r(hidden, l_in), (r(hidden) if bias else None), r(l_in, hidden)
    b2 = r(l_in) if bias else None
    ps, pd = r(1, 300, hidden), r(1, 7000, hidden)
    pre, gy = r(1, num_edges, hidden), r(1, num_edges, l_in)
    g_pre = r(num_edges, hidden) if static_edges else r(1, num_edges, hidden)
    g_out, g_agg = r(1, num_edges, l_in), r(1, 7000, l_in)
    cases = [
        ("gather_linear", el.linear_gather_add, reference.linear_gather_add, (e, w1, b1, ps, pd, src, dst)),
        ("silu_linear", el.silu_linear, reference.silu_linear, (pre, w2, b2)),
        ("dsilu_linear", el.linear_silu_backward, reference.linear_silu_backward, (gy, w2, pre)),
        ("residual_linear", el.linear_residual_backward, reference.linear_residual_backward,
         (g_pre, w1, g_out, g_agg, dst, 1)),
        ("residual_linear", el.linear_residual_backward, reference.linear_residual_backward,
         (g_pre, w1, None, g_agg, dst, 1)),
        ("residual_linear", el.linear_residual_backward, reference.linear_residual_backward,
         (g_pre, w1, g_out, None, dst, 1)),
    ]
    for name, fast_fn, ref_fn, args in cases:
        calls.clear()
        fast = fast_fn(*args)
        assert calls == [name], (name, calls)
        exact = ref_fn(*as64(args))
        assert fast.shape == exact.shape
        err_fast = (fast.double() - exact).abs().max().item()
        err_torch = (ref_fn(*args).double() - exact).abs().max().item()
        assert err_fast <= BUDGET * err_torch + 2**-7 * exact.abs().max().item(), (name, err_fast, err_torch)
        monkeypatch.setattr(el, "GLUON", False)  # the TMA kernel: the same result up to rounding
        scale = exact.abs().max().item()
        torch.testing.assert_close(fast.float(), fast_fn(*args).float(), rtol=0.02, atol=0.02 * scale)
        monkeypatch.setattr(el, "GLUON", True)


@needs_hopper
def test_gluon_gather_linear_persistent_programs_and_bare_product():
    """Few programs (many tiles each, across the pipelined epilogue's tile boundaries) and the bare product."""
    from weathergnn.ops.triton.edge_linear_gluon import gather_linear

    src, dst = _random_edges(50, 900, 3_001, seed=4)
    torch.manual_seed(4)
    e, w_kn, b = rand(3_001, 64, grad=False).bfloat16(), rand(64, 256, grad=False).bfloat16(), rand(256, grad=False)
    ps, pd = rand(50, 256, grad=False).bfloat16(), rand(900, 256, grad=False).bfloat16()
    want = e.double() @ w_kn.double() + b.double() + ps.double()[src] + pd.double()[dst]
    for programs in (1, 3, 7):
        out = gather_linear(e, w_kn, torch.empty(3_001, 256, device=DEVICE, dtype=torch.bfloat16), b, ps, pd,
                            src, dst, programs=programs)
        assert (out.double() - want).abs().max().item() <= 2**-6 * want.abs().max().item()
    bare = gather_linear(e, w_kn, torch.empty(3_001, 256, device=DEVICE, dtype=torch.bfloat16))
    torch.testing.assert_close(bare.double(), e.double() @ w_kn.double(), rtol=0.01, atol=0.05)
    with pytest.raises(ValueError, match="unsupported product"):
        gather_linear(e[:, :48].contiguous(), w_kn[:48], torch.empty(3_001, 256, device=DEVICE, dtype=torch.bfloat16))


def test_gluon_weight_operand_reads_linear_weights_in_place():
    """``nn.Linear`` weights seen through ``.t()`` and column slices of a wider weight reach the descriptor
    without a copy; strides TMA cannot address (unaligned start, strided columns) are copied."""
    gluon = pytest.importorskip("weathergnn.ops.triton.edge_linear_gluon",
                                reason="needs a Triton with Gluon's Hopper ops")
    w = torch.randn(512, 3 * 512, dtype=torch.bfloat16)  # [H, 3L]: an edge MLP's first layer
    for view, nk in ((w[:, 512:1024].t(), True), (w.t(), True), (w[:, :512], False), (w[:256], False)):
        op, got_nk = gluon.weight_operand(view)
        assert got_nk is nk and op.data_ptr() == view.data_ptr() and op.stride(1) == 1
        assert torch.equal(op.t() if nk else op, view)
    for view in (w[:, 3:515].t(), w[:, ::2]):
        op, got_nk = gluon.weight_operand(view)
        assert got_nk is False and op.is_contiguous() and op.data_ptr() != view.data_ptr()
        assert torch.equal(op, view)


@needs_hopper
def test_gluon_products_read_either_weight_layout():
    """Each Gluon product with its ``[K, N]`` weight stored ``[N, K]`` (``.t()`` of a weight, whole or a column
    slice of a wider one, as the node MLP's ``W_a``), as a column slice ``[K, N]`` of a wider ``[K, 2N]``
    (as ``W_h``), and contiguous: the same bits (one accumulation order)."""
    from weathergnn.ops.triton import edge_linear_gluon as gl_mod

    src, dst = _random_edges(60, 700, 1_337, seed=5)
    torch.manual_seed(5)
    r = lambda *s: rand(*s, grad=False).bfloat16()  # noqa: E731
    a, pre, t_out = r(1_337, 512), r(1_337, 256), r(1_337, 256)
    ps, pd, b = r(60, 256), r(700, 256), r(256)
    w_nk = r(256, 512)  # an nn.Linear weight [N, K]
    layouts = {"nk": w_nk.t(), "kn": w_nk.t().contiguous()}
    assert gl_mod.weight_operand(layouts["nk"])[1] and not gl_mod.weight_operand(layouts["kn"])[1]
    slices = [r(256, 2 * 512)[:, 512:].t(),  # [N, K] columns of a wider weight, seen as [K, N]: read as [N, K]
              r(512, 2 * 256)[:, 256:]]  # [K, N] columns of a wider [K, 2N]: rows 2N apart
    assert [gl_mod.weight_operand(w)[1] for w in slices] == [True, False]
    assert not any(w.is_contiguous() for w in slices)
    out = lambda: torch.empty(1_337, 256, device=DEVICE, dtype=torch.bfloat16)  # noqa: E731
    runs = {
        "gather_linear": lambda w: gl_mod.gather_linear(a, w, out(), b, ps, pd, src, dst),
        "silu_linear": lambda w: gl_mod.silu_linear(a, w, out(), b),
        "dsilu_linear": lambda w: gl_mod.dsilu_linear(a, w, out(), pre),
        "residual_linear": lambda w: gl_mod.residual_linear(a, w, out(), t_out, pd, dst),
    }
    for name, run in runs.items():
        assert torch.equal(run(layouts["nk"]), run(layouts["kn"])), name
        for w in slices:
            assert torch.equal(run(w), run(w.contiguous())), name
    bare = gl_mod.gather_linear(a, layouts["nk"], out())  # and the transposed read is the right product
    want = a.double() @ w_nk.double().t()
    assert (bare.double() - want).abs().max().item() <= 2**-7 * want.abs().max().item()


def test_edge_linear_no_edges():
    from weathergnn.ops.triton import edge_linear as el

    e = torch.zeros(0, 8, device=DEVICE)
    ps, pd = torch.zeros(1, 3, 5, device=DEVICE), torch.zeros(1, 2, 5, device=DEVICE)
    idx = torch.zeros(0, dtype=torch.long, device=DEVICE)
    pre, a = el.linear_gather_add_silu(e, torch.zeros(5, 8, device=DEVICE), None, ps, pd, idx, idx)
    assert pre.shape == a.shape == (1, 0, 5)
    assert el.silu_linear(pre, torch.zeros(8, 5, device=DEVICE), None).shape == (1, 0, 8)


@pytest.fixture(params=["pointer", "tma", "tma-ws"])
def weight_grad_loads(request, monkeypatch):
    """Run the silu_weight_grad tests with pointer loads and with TMA descriptors (where widths allow).

    ``tma-ws``: TMA loads with the row loop warp-specialised (small tiles, so the TMA-able cases take it).
    """
    from weathergnn.ops.triton import silu_weight_grad as swg

    monkeypatch.setattr(swg, "TMA", request.param != "pointer")
    if request.param == "tma-ws":
        monkeypatch.setattr(swg, "TUNE", (16, 16, 16, 1, 1, 1) if DEVICE.type != "cuda" else (16, 16, 32, 4, 3, 1))
    return request.param


@pytest.mark.parametrize("rows,length,hidden", [(1, 1, 1), (45, 13, 37), (100, 32, 48), (2 * 95, 48, 64)])
def test_silu_weight_grad_fp32(rows, length, hidden, weight_grad_loads):
    """dL/dW2 with the SiLU on load against float64: odd widths and row counts, split over several programs."""
    from weathergnn.ops import reference
    from weathergnn.ops.triton.silu_weight_grad import silu_weight_grad

    torch.manual_seed(rows)
    gy, pre = rand(rows, length, grad=False), 3 * rand(rows, hidden, grad=False)
    if rows % 2 == 0:  # batched [B, E, *] input
        gy, pre = gy.view(2, rows // 2, length), pre.view(2, rows // 2, hidden)
    out = silu_weight_grad(gy, pre)
    assert out.dtype == torch.float32 and out.shape == (length, hidden)
    torch.testing.assert_close(out.double(), reference.silu_weight_grad(gy.double(), pre.double()),
                               rtol=1e-5, atol=1e-5)


def test_silu_weight_grad_bf16_budget(weight_grad_loads):
    """bf16 inputs: error against float64 at most BUDGET x that of torch's bf16 path (silu, then matmul)."""
    from weathergnn.ops import reference
    from weathergnn.ops.triton.silu_weight_grad import silu_weight_grad

    torch.manual_seed(4)
    gy, pre = rand(2, 77, 32, grad=False).bfloat16(), rand(2, 77, 48, grad=False).bfloat16()
    exact = reference.silu_weight_grad(gy.double(), pre.double())
    torch_bf16 = gy.reshape(-1, 32).t().mm(torch.nn.functional.silu(pre).reshape(-1, 48))
    err_fast = (silu_weight_grad(gy, pre).double() - exact).abs().max().item()
    err_torch = (torch_bf16.double() - exact).abs().max().item()
    assert err_fast <= BUDGET * err_torch, (err_fast, err_torch)


@needs_hopper
@pytest.mark.parametrize("rows,length,hidden", [(1, 256, 384), (95, 256, 128), (20_037, 512, 512), (300_001, 512, 512)])
def test_silu_weight_grad_gluon_bf16_budget(rows, length, hidden, monkeypatch):
    """The Gluon weight gradient (Hopper, L % 256, H % 128) through ``silu_weight_grad``: against float64
    within the bf16 budget, against the Triton kernel, and with 1, 3 and 16 row splits (partial last
    split, rows past the end). Split counts change the order of the float32 sums: at 300,001 rows one
    split differs from 16 by 4e-4 of the largest entry on the H200 (4fbad6d)."""
    from weathergnn.ops import reference
    from weathergnn.ops.triton import edge_linear, silu_weight_grad_gluon
    from weathergnn.ops.triton.silu_weight_grad import silu_weight_grad

    calls = []
    real = silu_weight_grad_gluon.silu_weight_grad
    monkeypatch.setattr(silu_weight_grad_gluon, "silu_weight_grad", lambda *a, **k: (calls.append(1), real(*a, **k))[1])
    torch.manual_seed(rows)
    gy, pre = rand(1, rows, length, grad=False).bfloat16(), (3 * rand(1, rows, hidden, grad=False)).bfloat16()
    exact = reference.silu_weight_grad(gy.double(), pre.double())
    fast = silu_weight_grad(gy, pre)
    assert calls and fast.dtype == torch.float32 and fast.shape == (length, hidden)
    torch_bf16 = gy[0].t().mm(torch.nn.functional.silu(pre[0])).float()
    err_fast = (fast.double() - exact).abs().max().item()
    err_torch = (torch_bf16.double() - exact).abs().max().item()
    scale = exact.abs().max().item()
    assert err_fast <= BUDGET * err_torch + 2**-7 * scale, (err_fast, err_torch)
    for splits in (1, 3, 16):
        torch.testing.assert_close(real(gy[0], pre[0], splits=splits), fast, rtol=1e-3, atol=1e-3 * scale)
    monkeypatch.setattr(edge_linear, "GLUON", False)  # the Triton kernel: the same result up to rounding
    calls.clear()
    torch.testing.assert_close(silu_weight_grad(gy, pre), fast, rtol=1e-3, atol=1e-3 * scale)
    assert not calls
    with pytest.raises(ValueError, match="unsupported"):
        real(gy[0, :, :128].contiguous(), pre[0])


@pytest.mark.skipif(DEVICE.type != "cuda", reason="tanh.approx.f16x2 is a GPU instruction (the interpreter runs the exact SiLU)")
def test_fast_silu_against_float64():
    """The on-load SiLU via packed float16 tanh: within 1e-3 |x| of float64 (bf16 rounding: 3.9e-3 |x|).

    Includes inputs past float16's range (+-7e4, +-1e6: tanh saturates, silu = x or 0) and tiny ones.
    """
    import triton
    import triton.language as tl

    from weathergnn.ops.triton.activations import silu

    @triton.jit
    def apply(x_ptr, y_ptr, n, EXACT: tl.constexpr, BLOCK: tl.constexpr):
        o = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        tl.store(y_ptr + o, silu(tl.load(x_ptr + o, mask=o < n), EXACT), mask=o < n)

    x = torch.cat([torch.linspace(-30, 30, 6001), torch.tensor([-1e6, -7e4, -1e-8, 0.0, 1e-8, 7e4, 1e6])]).to(DEVICE)
    exact = x.double() * torch.sigmoid(x.double())
    for fast in (True, False):
        y = torch.empty_like(x)
        apply[(triton.cdiv(x.numel(), 1024),)](x, y, x.numel(), EXACT=not fast, BLOCK=1024)
        err = (y.double() - exact).abs()
        bound = (1e-3 if fast else 1e-6) * x.double().abs() + 1e-7
        assert (err <= bound).all(), (fast, err.max().item(), x[(err - bound).argmax()].item())


def test_silu_weight_grad_errors_and_empty():
    from weathergnn.ops.triton.silu_weight_grad import silu_weight_grad

    zero = silu_weight_grad(torch.zeros(0, 4, device=DEVICE), torch.zeros(0, 6, device=DEVICE))
    assert zero.shape == (4, 6) and not zero.any()
    with pytest.raises(ValueError, match="leading shape"):
        silu_weight_grad(torch.zeros(3, 4, device=DEVICE), torch.zeros(2, 6, device=DEVICE))


# ------------------------------------------------------------------ narrow_linear_silu


def nls_fns():
    from weathergnn.ops import reference

    fast = lambda x, w, b: dispatch.linear_silu(x, w, b, backend="triton")
    return fast, reference.linear_silu


@pytest.mark.parametrize("shape,features,hidden,bias", [
    ((1,), 1, 1, True), ((37,), 4, 13, True), ((2, 45), 8, 40, False), ((100,), 17, 33, True), ((3, 29), 32, 7, True),
])
@pytest.mark.parametrize("x_grad", [False, True])
def test_narrow_linear_silu_fp32(shape, features, hidden, bias, x_grad):
    """Forward and every gradient against float64, on odd widths and several row splits (100 rows: 3
    splits under the interpreter); ``dL/dx`` (constant inputs in the model) through the reference."""
    fast, ref = nls_fns()
    torch.manual_seed(features)
    x = rand(*shape, features, grad=x_grad)
    w, b = rand(hidden, features), rand(hidden) if bias else None
    inputs = [x, w] + ([b] if bias else [])
    check_fp32(lambda x, w, *b: fast(x, w, *(b or [None])), lambda x, w, *b: ref(x, w, *(b or [None])), inputs)


def test_narrow_linear_silu_bf16_budget():
    fast, ref = nls_fns()
    torch.manual_seed(5)
    inputs = [rand(300, 4), 2 * rand(96, 4), rand(96)]
    check_bf16_budget(fast, ref, inputs)


@pytest.mark.skipif(DEVICE.type != "cuda", reason="GPU sizes (the interpreter takes minutes at 10^5 rows)")
@pytest.mark.parametrize("rows,features", [(389_340, 4), (100_003, 3), (20_037, 8)])
def test_narrow_linear_silu_bf16_budget_gpu(rows, features):
    """The decoder embedder's size (389,340 edges of a mesh2grid chunk, 4 features, 512 wide) and odd ones."""
    fast, ref = nls_fns()
    torch.manual_seed(rows)
    check_bf16_budget(fast, ref, [rand(rows, features), rand(512, features), rand(512)])


def test_narrow_linear_silu_errors_and_empty():
    from weathergnn.models import mlp
    from weathergnn.ops.triton import narrow_linear_silu as nls

    assert mlp.NARROW_MAX_FEATURES == nls.MAX_FEATURES
    w, b = rand(6, 4, grad=False), rand(6, grad=False)
    out = nls.narrow_linear_silu(torch.zeros(0, 4, device=DEVICE), w, b)
    assert out.shape == (0, 6)
    gw, gb = nls.narrow_linear_silu_backward(torch.zeros(0, 6, device=DEVICE), torch.zeros(0, 4, device=DEVICE), w, b)
    assert gw.shape == (6, 4) and gb.shape == (6,) and not gw.any() and not gb.any()
    with pytest.raises(ValueError, match="at most 32"):
        nls.narrow_linear_silu(torch.zeros(3, 33, device=DEVICE), rand(6, 33, grad=False), None)
    with pytest.raises(ValueError, match="do not form"):
        nls.narrow_linear_silu(torch.zeros(3, 5, device=DEVICE), w, b)
    with pytest.raises(ValueError, match="share a dtype"):
        nls.narrow_linear_silu(torch.zeros(3, 4, device=DEVICE), w.double(), None)
    with pytest.raises(ValueError, match="grad"):
        nls.narrow_linear_silu_backward(torch.zeros(3, 5, device=DEVICE), torch.zeros(3, 4, device=DEVICE), w, b)


def test_mlp_narrow_first_layer_matches_torch_backend():
    """An embedder MLP over 4 static features: the Triton path (first layer on narrow_linear_silu, no
    padding) against the torch path (padded products), outputs and every gradient."""
    from weathergnn.models.mlp import MLP

    torch.manual_seed(0)
    mlp = MLP(4, 24, 12, align=8).to(DEVICE)
    assert mlp.narrow and mlp.in_pad == 4
    compare_modules(mlp, lambda: (rand(53, 4, grad=False),))


# ------------------------------------------------------------------ layer_norm_residual


def ln_fn(backend, length):
    def fn(y, res, w, b):
        norm = torch.nn.LayerNorm(length, device=DEVICE, dtype=w.dtype)
        norm.weight, norm.bias = torch.nn.Parameter(w), torch.nn.Parameter(b)
        return dispatch.layer_norm_residual(y, res, norm, backend=backend)

    # LayerNorm parameters must be leaves of the autograd graph: wrap functionally instead.
    def functional(y, res, w, b):
        if backend == "torch":
            return res + torch.nn.functional.layer_norm(y, (length,), w, b, 1e-5)
        from weathergnn.ops import custom_ops

        out, _, _ = custom_ops.layer_norm_residual(
            y.reshape(-1, length), res.expand_as(y).reshape(-1, length), w, b, 1e-5
        )
        return out.view(y.shape)

    return functional


@pytest.mark.parametrize("length", [13, 37, 64])
def test_layer_norm_residual(length):
    y, res = rand(2, 19, length), rand(2, 19, length)
    w, b = rand(length), rand(length)
    check_fp32(ln_fn("triton", length), ln_fn("torch", length), [y, res, w, b], rtol=2e-5, atol=2e-5)


def test_layer_norm_residual_bf16_budget():
    y, res = rand(3, 17, 37), rand(3, 17, 37)
    w, b = rand(37), rand(37)
    check_bf16_budget(ln_fn("triton", 37), ln_fn("torch", 37), [y, res, w, b])


@pytest.mark.parametrize("with_res", [True, False])
def test_layer_norm_residual_y_bias(with_res):
    """``res + LN(y + y_bias)``: forward and every gradient (``y_bias``'s is the backward's row sum of dL/dy)
    against float64, with ``res`` and without."""
    from weathergnn.ops import custom_ops

    length = 37

    def fast(y, yb, w, b, *res):
        out, _, _ = custom_ops.layer_norm_residual(y.reshape(-1, length), res[0].reshape(-1, length) if res else None,
                                                   w, b, 1e-5, yb)
        return out.view(y.shape)

    def ref(y, yb, w, b, *res):
        out = torch.nn.functional.layer_norm(y + yb, (length,), w, b, 1e-5)
        return res[0] + out if res else out

    inputs = [rand(2, 23, length), rand(length), rand(length), rand(length)] + ([rand(2, 23, length)] if with_res else [])
    check_fp32(fast, ref, inputs, rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("tune", [(2, 1, 6), (1, 1, 5)])
def test_layer_norm_residual_backward_long_programs(tune, monkeypatch):
    """Backward programs that loop over several row blocks, the last one partial (as on the GPU, where each
    program takes 32 blocks), against float64; and the column sums of an empty input are zeros."""
    from weathergnn.ops import custom_ops
    from weathergnn.ops.triton import layer_norm_residual as lmod

    monkeypatch.setattr(lmod, "TUNE", tune)
    length = 37

    def fast(y, yb, w, b, res):
        out, _, _ = custom_ops.layer_norm_residual(y.reshape(-1, length), res.reshape(-1, length), w, b, 1e-5, yb)
        return out.view(y.shape)

    def ref(y, yb, w, b, res):
        return res + torch.nn.functional.layer_norm(y + yb, (length,), w, b, 1e-5)

    check_fp32(fast, ref, [rand(1, 29, length), rand(length), rand(length), rand(length), rand(1, 29, length)],
               rtol=2e-5, atol=2e-5)
    empty = torch.zeros(0, length, device=DEVICE)
    stats = torch.zeros(0, device=DEVICE)
    gy, sums, total = lmod.layer_norm_residual_backward(empty, empty, rand(length, grad=False), stats, stats)
    assert gy.shape == (0, length) and total is None
    torch.testing.assert_close(sums, torch.zeros(3, length, device=DEVICE), rtol=0, atol=0)


@pytest.mark.parametrize("tune", [(2, 1, 6), (1, 1, 5), None])
def test_layer_norm_residual_backward_gathered_grad_agg_against_float64(tune, monkeypatch):
    """The backward with dL/dagg[b, dst[e]] gathered per row (the interaction layer's edge update), programs
    that loop over several row blocks with the next block prefetched, a partial last block, batch 2:
    dL/dy, the three column sums and the total row gradient against float64 autograd."""
    from weathergnn.ops.triton import layer_norm_residual as lmod

    monkeypatch.setattr(lmod, "TUNE", tune)
    g = torch.Generator().manual_seed(11)
    b, n_e, n_d, length = 2, 29, 7, 37
    dst = torch.sort(torch.randint(0, n_d, (n_e,), generator=g)).values
    y = torch.randn(b * n_e, length, generator=g, dtype=torch.float64)
    w, grad, gagg = (torch.randn(*s, generator=g, dtype=torch.float64)
                     for s in ((length,), (b * n_e, length), (b, n_d, length)))
    mean = y.mean(1)
    rstd = 1.0 / torch.sqrt(y.var(1, unbiased=False) + 1e-5)
    total = grad + gagg[torch.arange(b).repeat_interleave(n_e), dst.repeat(b)]  # [B*E, L]
    y_ref = y.clone().requires_grad_(True)
    w_ref = w.clone().requires_grad_(True)
    beta = torch.zeros(length, dtype=torch.float64, requires_grad=True)
    out = torch.nn.functional.layer_norm(y_ref, (length,), w_ref, beta, 1e-5)
    gy_ref, gw_ref, gb_ref = torch.autograd.grad(out, (y_ref, w_ref, beta), total)
    f32 = dict(device=DEVICE, dtype=torch.float32)
    gy, sums, tot = lmod.layer_norm_residual_backward(
        grad.to(**f32), y.to(**f32), w.to(**f32), mean.to(**f32), rstd.to(**f32), gagg.to(**f32),
        dst.to(DEVICE), write_total=True)
    torch.testing.assert_close(gy.cpu().double(), gy_ref, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(tot.cpu().double(), total, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(sums.cpu().double(), torch.stack([gw_ref, gb_ref, gy_ref.sum(0)]), rtol=1e-4, atol=1e-4)


def test_layer_norm_backward_column_sums_stay_float32_under_autocast():
    """The partial sums' reduction (a GEMV with ones) is not cast to bf16 by an enclosing autocast
    (CUDA autocast casts ``mv``; CPU autocast leaves it alone, so on CPU this checks the sum only):
    it matches a float64 sum to float32 accuracy, on odd sizes."""
    from weathergnn.ops.triton import layer_norm_residual as lmod

    g = torch.Generator().manual_seed(5)
    parts = torch.randn(301, 3 * 37, generator=g, dtype=torch.float64)
    with torch.autocast(DEVICE.type, dtype=torch.bfloat16):
        sums = lmod._column_sums(parts.float().to(DEVICE))
    assert sums.dtype == torch.float32 and sums.shape == (3 * 37,)
    torch.testing.assert_close(sums.cpu().double(), parts.sum(0), rtol=1e-5, atol=1e-5)


def test_mlp_bias_in_norm_matches_bias_in_product():
    """MLP with b2 added by the LayerNorm kernel (Triton) against the torch path, outputs and gradients;
    with and without a residual."""
    from weathergnn.models.mlp import MLP

    torch.manual_seed(3)
    mlp = MLP(40, 24, 12).to(DEVICE)
    assert mlp.bias_in_norm and not mlp.narrow
    compare_modules(mlp, lambda: (rand(2, 31, 40),))
    compare_modules(mlp, lambda: (rand(2, 31, 40), rand(2, 31, 12)))


@pytest.mark.parametrize("with_bias", [True, False])
def test_silu_linear_autograd(with_bias):
    """``dispatch.silu_linear`` on the SiLU-on-load GEMM (odd widths, a leading shape that is not [1, E]):
    forward and the gradients of pre, weight and bias against float64, and the bf16 error budget."""
    def fast(pre, w, *b):
        return dispatch.silu_linear(pre, w, *b, backend="triton", gemm="triton")

    def ref(pre, w, *b):
        return dispatch.silu_linear(pre, w, *b, backend="torch")

    inputs = [rand(2, 3, 11, 40), rand(24, 40)] + ([rand(24)] if with_bias else [])
    check_fp32(fast, ref, inputs, rtol=2e-5, atol=2e-5)
    check_bf16_budget(fast, ref, inputs)
    with pytest.raises(ValueError, match="edge_gemm"):
        dispatch.silu_linear(inputs[0], inputs[1], gemm="cutlass")


@pytest.mark.parametrize("with_res", [False, True])
def test_mlp_silu_gemm_matches_torch(with_res):
    """An MLP whose second layer applies the SiLU on load (``silu_gemm="triton"``) against the torch path,
    outputs and every gradient; also through ``forward_concat``."""
    from weathergnn.models.mlp import MLP

    torch.manual_seed(4)
    mlp = MLP(40, 24, 16, silu_gemm="triton").to(DEVICE)
    res = (lambda: (rand(2, 31, 16),)) if with_res else (lambda: ())
    compare_modules(mlp, lambda: (rand(2, 31, 40), *res()))
    compare_modules(_Concat(mlp, 25), lambda: (rand(2, 31, 40),))
    with pytest.raises(ValueError, match="edge_gemm"):
        MLP(40, 24, 16, silu_gemm="cutlass")


class _Concat(torch.nn.Module):
    """``mlp.forward_concat`` on the input split at column ``cut``."""

    def __init__(self, mlp, cut):
        super().__init__()
        self.mlp, self.cut = mlp, cut

    def forward(self, x):
        return self.mlp.forward_concat(x[..., : self.cut], x[..., self.cut:])


def test_layer_norm_residual_dispatch_matches_module():
    norm = torch.nn.LayerNorm(13, device=DEVICE)
    y, res = rand(2, 7, 13, grad=False), rand(7, 13, grad=False)  # res broadcasts over batch
    fast = dispatch.layer_norm_residual(y, res, norm, backend="triton")
    torch.testing.assert_close(fast, res + norm(y), rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------ layer_norm_residual_segment_sum


def ln_segsum_inputs(adj, length, res_kind, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    mk = lambda *shape: torch.randn(*shape, generator=g).to(device=DEVICE, dtype=dtype)
    res = {"none": None, "static": mk(adj.num_edges, length), "batched": mk(2, adj.num_edges, length)}[res_kind]
    return mk(2, adj.num_edges, length), res, mk(length), mk(length)


@pytest.mark.parametrize("length", [1, 13, 37])
@pytest.mark.parametrize("res_kind", ["none", "static", "batched"])
@pytest.mark.parametrize("pieces", [False, True])
def test_layer_norm_residual_segment_sum(length, res_kind, pieces, monkeypatch):
    """Statistics and per-receiver sums against float64, with and without the two-pass (pieces) sum;
    agg equals the two-kernel path's (LayerNorm + residual written, then summed)."""
    from weathergnn.ops import custom_ops as C
    from weathergnn.ops import reference
    from weathergnn.ops.adjacency import split_segments
    from weathergnn.ops.triton import layer_norm_segment_sum as mod

    adj = hostile_graph(seed=11)
    extra = ()
    if pieces:
        monkeypatch.setattr(mod, "SPLIT_MIN_MEAN", 0.0)
        extra = split_segments(adj.dst_ptr, 3)
    y, res, w, b = ln_segsum_inputs(adj, length, res_kind)
    fast = C.layer_norm_residual_segment_sum(y, res, w, b, 1e-5, adj.dst_ptr, *extra)
    ref = reference.layer_norm_residual_segment_sum(
        y.double(), None if res is None else res.double(), w.double(), b.double(), 1e-5, adj.dst_ptr)
    for k, (f, r) in enumerate(zip(fast, ref)):
        torch.testing.assert_close(f.double(), r, rtol=2e-5, atol=2e-5, msg=lambda m: f"output {k}: {m}")
    agg = fast[2]
    assert agg.shape == (2, adj.num_dst, length) and (agg[:, adj.dst_ptr.diff() == 0] == 0).all()
    rows = y.reshape(-1, length)
    res_rows = None if res is None else res.expand_as(y).reshape(-1, length)
    e_new, _, _ = C.layer_norm_residual(rows, res_rows, w, b, 1e-5)
    two_kernels = reference.segment_sum(e_new.view_as(y), adj.dst_ptr, adj.dst)
    torch.testing.assert_close(agg, two_kernels, rtol=1e-6, atol=1e-6)


def test_layer_norm_residual_segment_sum_bf16_budget():
    from weathergnn.ops import custom_ops as C
    from weathergnn.ops import reference

    adj = hostile_graph(seed=12)
    y, res, w, b = ln_segsum_inputs(adj, 37, "static", dtype=torch.bfloat16, seed=3)
    agg = C.layer_norm_residual_segment_sum(y, res, w, b, 1e-5, adj.dst_ptr)[2]
    exact = reference.layer_norm_residual_segment_sum(y.double(), res.double(), w.double(), b.double(), 1e-5,
                                                      adj.dst_ptr)[2]
    # plain torch in bf16: LayerNorm, residual add and segment sum, each rounding to bf16
    ln = torch.nn.functional.layer_norm(y, (37,), w, b, 1e-5) + res
    err_fast = (agg.double() - exact).abs().max().item()
    err_torch = (reference.segment_sum(ln, adj.dst_ptr, adj.dst).double() - exact).abs().max().item()
    assert err_fast <= BUDGET * err_torch + 2**-7 * exact.abs().max().item(), f"{err_fast} vs {err_torch}"


def test_layer_norm_residual_segment_sum_errors_and_empty():
    from weathergnn.ops.triton.layer_norm_segment_sum import layer_norm_residual_segment_sum

    adj = Adjacency.from_edges(torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long), 3, 4).to(DEVICE)
    w = torch.ones(5, device=DEVICE)
    mean, rstd, agg = layer_norm_residual_segment_sum(torch.zeros(1, 0, 5, device=DEVICE), None, w, w, 1e-5,
                                                      adj.dst_ptr)
    assert mean.shape == rstd.shape == (0,) and agg.shape == (1, 4, 5) and (agg == 0).all()
    with pytest.raises(ValueError, match=r"y must be \[B, E, L\]"):
        layer_norm_residual_segment_sum(torch.zeros(3, 5, device=DEVICE), None, w, w, 1e-5, adj.dst_ptr)
    with pytest.raises(ValueError, match="does not match y"):
        layer_norm_residual_segment_sum(torch.zeros(1, 3, 5, device=DEVICE), torch.zeros(4, 5, device=DEVICE),
                                        w, w, 1e-5, adj.dst_ptr)


# ------------------------------------------------------------------ opcheck


def opcheck_cases():
    from weathergnn.ops import custom_ops as C

    adj = hostile_graph(seed=6)
    f = 5
    h = rand(2, adj.num_src, f)
    idx = (adj.src, adj.dst, adj.dst_ptr, adj.src_perm, adj.src_ptr, adj.src_dst)
    return [
        (C.segment_sum, (rand(2, adj.num_edges, f), adj.dst_ptr, adj.dst)),
        (C.neighbour_sum, (h, rand(adj.num_edges), *idx)),
        (C.neighbour_sum, (h, None, *idx)),
        (C.neighbour_sum, (h, rand(adj.num_edges), *idx, adj.dst_pieces, adj.dst_groups, adj.src_pieces, adj.src_groups)),
        (C.gather_add_silu, (rand(2, adj.num_edges, f), h, rand(2, adj.num_dst, f), adj.src, adj.dst,
                             adj.dst_ptr, adj.src_perm, adj.src_ptr)),
        (C.layer_norm_residual, (rand(9, f), rand(9, f), rand(f), rand(f), 1e-5)),
        (C.layer_norm_residual, (rand(9, f), None, rand(f), rand(f), 1e-5, rand(f))),
        (C.csr_sum, (rand(2, adj.num_src, f, grad=False), adj.dst_ptr, adj.src, None, None)),
        (C.edge_dot, (rand(2, adj.num_dst, f, grad=False), h.detach(), adj.src, adj.dst)),
        *[(getattr(C, "linear_" + name), args) for name, args in (
            ("gather_add", (rand(adj.num_edges, 7, grad=False), rand(f, 7, grad=False), rand(f, grad=False),
                            h.detach(), rand(2, adj.num_dst, f, grad=False), adj.src, adj.dst)),
            ("silu_backward", (rand(2, adj.num_edges, 7, grad=False), rand(7, f, grad=False),
                               rand(2, adj.num_edges, f, grad=False))),
            ("residual_backward", (rand(2, adj.num_edges, f, grad=False), rand(f, 7, grad=False),
                                   rand(2, adj.num_edges, 7, grad=False), rand(2, adj.num_dst, 7, grad=False),
                                   adj.dst, 2)),
        )],
        (C.silu_linear, (rand(2, adj.num_edges, f, grad=False), rand(7, f, grad=False), rand(7, grad=False))),
        (C.silu_linear, (rand(1, adj.num_edges, f), rand(7, f), rand(7))),  # its autograd (MLP second layers)
        (C.silu_weight_grad, (rand(2, adj.num_edges, 7, grad=False), rand(2, adj.num_edges, f, grad=False))),
        (C.layer_norm_residual_segment_sum, (rand(2, adj.num_edges, f, grad=False), rand(adj.num_edges, f, grad=False),
                                             rand(f, grad=False), rand(f, grad=False), 1e-5, adj.dst_ptr,
                                             adj.dst_pieces, adj.dst_groups)),
        (C.narrow_linear_silu, (rand(2, 19, 4), rand(f, 4), rand(f))),
        (C.narrow_linear_silu, (rand(19, 3, grad=False), rand(f, 3), None)),
        (C.narrow_linear_silu_backward, (rand(19, f, grad=False), rand(19, 4, grad=False), rand(f, 4, grad=False),
                                         rand(f, grad=False))),
    ]


@pytest.mark.parametrize("case", range(19))
def test_opcheck(case):
    op, args = opcheck_cases()[case]
    torch.library.opcheck(op, args, test_utils=("test_schema", "test_autograd_registration", "test_faketensor"))


# ------------------------------------------------------------------ models use them unchanged


def small_edge_set(num_src, num_dst, seed):
    from graph_fixtures import random_edge_set

    return random_edge_set(num_src, num_dst, max_degree=6, seed=seed)


def test_interaction_layer_triton_equals_torch():
    torch.manual_seed(0)
    edges = EdgeBuffers(small_edge_set(7, 6, seed=1)).to(DEVICE)
    layer = InteractionLayer(12, hidden=10).to(DEVICE)
    compare_modules(layer, lambda: (rand(2, 7, 12), rand(2, 6, 12), rand(edges.num_edges, 12), edges))


def test_fused_layer_triton_equals_torch_bipartite():
    torch.manual_seed(0)
    edges = EdgeBuffers(small_edge_set(7, 6, seed=2)).to(DEVICE)
    layer = FusedLayer(12, heads=2).to(DEVICE)
    compare_modules(layer, lambda: (rand(2, 7, 12), edges, rand(2, 6, 12)))


@pytest.mark.parametrize("processor", ["interaction", "fused"])
def test_encode_process_decode_triton_equals_torch(processor):
    from graph_fixtures import random_graphs

    torch.manual_seed(0)
    model = EncodeProcessDecode(random_graphs(), 5, 3, latent=8, layers=2, processor=processor).to(DEVICE)
    compare_modules(model, lambda: (rand(2, model.num_grid_nodes, 5),))


def test_eager_fast_path_equals_registered_ops():
    """dispatch uses plain autograd Functions in eager mode: same results as the custom ops."""
    from weathergnn.ops import custom_ops as C

    adj = hostile_graph(seed=7)
    h, c = rand(2, adj.num_src, 13), rand(adj.num_edges)
    idx = (adj.src, adj.dst, adj.dst_ptr, adj.src_perm, adj.src_ptr, adj.src_dst)
    a = run(lambda h, c: C.eager_neighbour_sum(h, c, *idx), [h, c])
    b = run(lambda h, c: C.neighbour_sum(h, c, *idx), [h, c])
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, rtol=0, atol=0)
    m = rand(2, adj.num_edges, 13)
    a = run(lambda m: C.eager_segment_sum(m, adj.dst_ptr, adj.dst), [m])
    b = run(lambda m: C.segment_sum(m, adj.dst_ptr, adj.dst), [m])
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, rtol=0, atol=0)


def test_torch_compile_traces_through_custom_ops():
    """torch.compile (aot_eager: no C++ compiler needed) runs the registered ops, forward and backward."""
    adj = hostile_graph(seed=8)
    h = rand(2, adj.num_src, 5)

    def f(h):
        return dispatch.neighbour_sum(h, adj, None, backend="triton")

    compiled = torch.compile(f, backend="aot_eager", fullgraph=True)
    a, b = run(compiled, [h]), run(f, [h])
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, rtol=1e-6, atol=1e-6)


def test_split_segments_brute_force():
    from weathergnn.ops.adjacency import split_segments

    ptr = torch.tensor([0, 0, 5, 6, 40, 40, 73])
    pieces, groups = split_segments(ptr, max_len=16)
    expect, expect_groups = [], [0]
    for i in range(len(ptr) - 1):
        lo, hi = int(ptr[i]), int(ptr[i + 1])
        starts = list(range(lo, hi, 16))
        expect += starts
        expect_groups.append(expect_groups[-1] + len(starts))
    assert pieces.tolist() == expect + [73]
    assert groups.tolist() == expect_groups


def test_two_pass_sums_match_reference(monkeypatch):
    """Force the two-pass (pieces, then groups) path on every segment sum: same results."""
    from weathergnn.ops.triton import csr_sum as csr_mod

    monkeypatch.setattr(csr_mod, "SPLIT_MIN_MEAN", 0.0)
    from weathergnn.ops.adjacency import split_segments

    adj = hostile_graph(seed=9)
    adj.dst_pieces, adj.dst_groups = split_segments(adj.dst_ptr, 3)
    adj.src_pieces, adj.src_groups = split_segments(adj.src_ptr, 3)
    h, c = rand(2, adj.num_src, 13), rand(adj.num_edges)
    check_fp32(lambda h, c: dispatch.neighbour_sum(h, adj, c, backend="triton"),
               lambda h, c: dispatch.neighbour_sum(h, adj, c, backend="torch"), [h, c])
    x, ps, pd = rand(2, adj.num_edges, 13), rand(2, adj.num_src, 13), rand(2, adj.num_dst, 13)
    check_fp32(lambda *a: dispatch.gather_add_silu(*a, adj, backend="triton"),
               lambda *a: dispatch.gather_add_silu(*a, adj, backend="torch"), [x, ps, pd])
    m = rand(2, adj.num_edges, 13)
    pieces = (adj.dst_pieces, adj.dst_groups)
    check_fp32(lambda m: dispatch.segment_sum(m, adj.dst_ptr, adj.dst, backend="triton", pieces=pieces),
               lambda m: dispatch.segment_sum(m, adj.dst_ptr, adj.dst, backend="torch"), [m])


@pytest.mark.parametrize("edge_gemm,width,hidden", [
    ("triton", 12, 10), ("cublas", 12, 10), ("triton", 16, 32),  # last: through the TMA-fed kernel
])
@pytest.mark.parametrize("edges_out", ["used", "unused", "not returned"])
@pytest.mark.parametrize("static_edges", [True, False])
def test_interaction_edge_update_matches_reference(edges_out, static_edges, edge_gemm, width, hidden,
                                                   monkeypatch):
    """The fused edge node (handwritten backward) vs the torch references: e', agg and every gradient.

    Covers e' unused downstream, returned or not (``return_edges=False``, the
    encoder / decoder / last processor layer: only agg is used), static
    edge latents [E, L] broadcast over a batch of 2, and both edge-GEMM paths
    (Triton GEMMs with fused epilogues, pointer- or TMA-fed, or cuBLAS plus
    separate kernels).
    """
    from weathergnn.ops.triton import edge_linear, edge_linear_tma

    monkeypatch.setattr(edge_linear, "TMA", True)  # where the widths allow (multiples of 16 here)
    launches = []
    real = edge_linear_tma.launch
    monkeypatch.setattr(edge_linear_tma, "launch", lambda *a, **k: (launches.append(a[0]), real(*a, **k)))
    torch.manual_seed(3)
    edges = EdgeBuffers(small_edge_set(7, 6, seed=5)).to(DEVICE)
    lin_edge, lin2 = torch.nn.Linear(width, hidden).to(DEVICE), torch.nn.Linear(hidden, width).to(DEVICE)
    norm = torch.nn.LayerNorm(width).to(DEVICE)
    with torch.no_grad():
        norm.weight.normal_()
        norm.bias.normal_()
    params = [lin_edge.weight, lin_edge.bias, lin2.weight, lin2.bias, norm.weight, norm.bias]
    e = rand(edges.num_edges, width) if static_edges else rand(2, edges.num_edges, width)
    ps, pd = rand(2, 7, hidden), rand(2, 6, hidden)
    results = []
    for backend in ("torch", "triton"):
        for p in params:
            p.grad = None
        e_new, agg = dispatch.interaction_edge_update(e, ps, pd, edges, lin_edge, lin2, norm, backend=backend,
                                                      edge_gemm=edge_gemm, return_edges=edges_out != "not returned")
        assert (e_new is None) == (edges_out == "not returned")
        g_agg = torch.randn(agg.shape, generator=torch.Generator().manual_seed(1)).to(agg)
        outs, grads = [agg], [g_agg]
        if edges_out == "used":
            outs.append(e_new)
            grads.append(torch.randn(e_new.shape, generator=torch.Generator().manual_seed(2)).to(e_new))
        leaves = [e, ps, pd, *params]
        g = torch.autograd.grad(outs, leaves, grads)
        results.append(([] if e_new is None else [e_new.detach()]) + [agg.detach(), *g])
    for k, (ref, fast) in enumerate(zip(*results)):
        torch.testing.assert_close(fast, ref, rtol=1e-4, atol=1e-4, msg=lambda m: f"item {k}: {m}")
    # forward: the first GEMM with its gathers, the second with SiLU on load (MODE_PLAIN); backward:
    # dSiLU and, when e needs its gradient (always here), the residual
    expected = [edge_linear.MODE_GATHER_SILU, edge_linear.MODE_PLAIN, edge_linear.MODE_DSILU,
                edge_linear.MODE_RESIDUAL]
    assert launches == (expected if edge_gemm == "triton" and width % 16 == 0 == hidden % 16 else [])


def test_edge_gemm_setting():
    """``auto`` takes the fused path only where the TMA kernel runs (never on CPU); bad values fail early."""
    from weathergnn.ops.interaction_edge import use_fused_gemm

    e = rand(5, 16)
    assert use_fused_gemm("triton", e, 32) and not use_fused_gemm("cublas", e, 32)
    assert not use_fused_gemm("auto", e.cpu(), 32)
    if torch.cuda.is_available():
        major = torch.cuda.get_device_capability()[0]
        assert use_fused_gemm("auto", e.cuda().bfloat16(), 32) == (major >= 9)
        assert not use_fused_gemm("auto", e.cuda().bfloat16(), 20)  # width not a multiple of 16
    with pytest.raises(ValueError, match="edge_gemm 'cutlass'"):
        InteractionLayer(16, backend="torch", edge_gemm="cutlass")


@pytest.mark.parametrize("edge_gemm", ["triton", "cublas"])
def test_interaction_edge_update_saves_through_hooks(edge_gemm):
    """Under saved-tensor hooks (activation checkpointing) the [B, E, *] activations go through them.

    Kept on ctx instead, they would stay alive through a checkpointed forward
    (the GraphCast-size eager step went from 16.9 to 34.9 GiB that way).
    """
    edges = EdgeBuffers(small_edge_set(7, 6, seed=2)).to(DEVICE)
    lin_edge, lin2 = torch.nn.Linear(12, 10).to(DEVICE), torch.nn.Linear(10, 12).to(DEVICE)
    norm = torch.nn.LayerNorm(12).to(DEVICE)
    e, ps, pd = rand(2, edges.num_edges, 12), rand(2, 7, 10), rand(2, 6, 10)
    packed = []

    def pack(t):
        packed.append(tuple(t.shape))
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        e_new, agg = dispatch.interaction_edge_update(e, ps, pd, edges, lin_edge, lin2, norm, backend="triton",
                                                      edge_gemm=edge_gemm)
    assert (2, edges.num_edges, 12) in packed[1:]  # y (LayerNorm input), besides e itself
    assert (2, edges.num_edges, 10) in packed  # the pre-activation (or its edge part)
    agg.sum().backward()
    assert e.grad is not None and lin_edge.weight.grad is not None


@pytest.mark.parametrize("edge_gemm", ["auto", "triton"])  # on CPU: the split layer; the one-node layer
def test_interaction_layer_compiles_without_graph_breaks(edge_gemm):
    torch._dynamo.reset()  # trace from scratch, whatever earlier tests compiled
    torch.manual_seed(0)
    edges = EdgeBuffers(small_edge_set(7, 6, seed=1)).to(DEVICE)
    layer = InteractionLayer(12, hidden=10, backend="triton", edge_gemm=edge_gemm).to(DEVICE)
    compiled = torch.compile(layer, backend="aot_eager", fullgraph=True)
    hs, hd, e = rand(2, 7, 12), rand(2, 6, 12), rand(edges.num_edges, 12)
    a = layer(hs, hd, e, edges)
    b = compiled(hs, hd, e, edges)
    for x, y in zip(a, b):
        torch.testing.assert_close(y, x, rtol=1e-6, atol=1e-6)
    (b[0].sum() + b[1].sum()).backward()
    assert all(p.grad is not None for p in layer.parameters())
    assert hd.grad is not None and hs.grad is not None and e.grad is not None
