"""The interaction layer as one autograd node (``ops.interaction_edge.InteractionUpdate``).

Checked against the same layer on the torch backend in float64 (an
independent composition of plain torch ops): both outputs and the gradient of
every input and parameter, for each way the senders arrive (their own
latents, the receivers themselves as in the processor, projections given as
in the mappers), with and without ``e'`` returned, static and batched edge
latents, batch 1 and 2, odd widths and receivers without incoming edges. On
the CPU the Triton kernels run under the interpreter (``TRITON_INTERPRET=1``,
conftest.py) and ``linear_add`` is ``torch.addmm``; on a Hopper GPU the same
tests run the Gluon kernels. The compile test is
``test_triton_kernels.test_interaction_layer_compiles_without_graph_breaks``.
"""

from __future__ import annotations

import copy

import pytest
import torch

from weathergnn.models.processors import EdgeBuffers, InteractionLayer
from weathergnn.ops import triton as triton_backend

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
pytestmark = pytest.mark.skipif(
    not triton_backend.available(DEVICE), reason=triton_backend.unavailable_reason(DEVICE) or "n/a"
)


def _edges(num_src: int, num_dst: int, seed: int) -> EdgeBuffers:
    from graph_fixtures import random_edge_set

    es = random_edge_set(num_src, num_dst, max_degree=6, seed=seed)
    return EdgeBuffers(es).to(DEVICE)


def _run(layer, edges, inputs, src_mode, return_edges, g_h, g_e):
    """Forward and backward of ``layer``; returns outputs and gradients (inputs, then parameters)."""
    h_src, h_dst, e = inputs
    p_src = None
    if src_mode == "same":
        h_src = h_dst
    elif src_mode == "given":
        p_src, h_src = layer.edge_mlp.lin_src(h_src), None
    h_new, e_new = layer(h_src, h_dst, e, edges, p_src=p_src, return_edges=return_edges)
    outs = [h_new] + ([e_new] if return_edges else [])
    assert (e_new is not None) == return_edges
    grads = [g_h] + ([g_e] if return_edges else [])
    torch.autograd.backward(outs, [g.to(o.dtype) for o, g in zip(outs, grads)])
    used = [inputs[1], inputs[2]] + ([] if src_mode == "same" else [inputs[0]])
    return outs, [x.grad for x in used] + [p.grad for p in layer.parameters()]


@pytest.mark.parametrize("src_mode", ["nodes", "same", "given"])
@pytest.mark.parametrize("return_edges", [True, False])
@pytest.mark.parametrize("batch,static", [(1, True), (2, True), (2, False)])
def test_interaction_update_equals_float64_reference(src_mode, return_edges, batch, static):
    torch.manual_seed(0)
    latent, hidden = 12, 10
    n_src, n_dst = (9, 9) if src_mode == "same" else (7, 11)  # more receivers than edges reach: zero degree
    edges = _edges(n_src, n_dst, seed=3)
    assert int((edges.dst_ptr[1:] - edges.dst_ptr[:-1] == 0).sum()) > 0 or src_mode == "same"
    fast = InteractionLayer(latent, hidden=hidden, backend="triton", edge_gemm="triton").to(DEVICE)
    ref = copy.deepcopy(fast).double()
    ref.backend = ref.edge_mlp.backend = ref.node_mlp.backend = "torch"
    gen = torch.Generator().manual_seed(1)
    h_src = torch.randn(batch, n_src, latent, generator=gen)
    h_dst = torch.randn(batch, n_dst, latent, generator=gen)
    e = torch.randn(*(() if static else (batch,)), edges.num_edges, latent, generator=gen)
    g_h = torch.randn(batch, n_dst, latent, generator=gen).to(DEVICE)
    g_e = torch.randn(batch, edges.num_edges, latent, generator=gen).to(DEVICE)

    def leaves(dtype):
        return [x.to(DEVICE, dtype).clone().requires_grad_() for x in (h_src, h_dst, e)]

    outs, grads = _run(fast, edges, leaves(torch.float32), src_mode, return_edges, g_h, g_e)
    assert "InteractionUpdate" in type(outs[0].grad_fn).__name__  # the one-node path ran
    ref_outs, ref_grads = _run(ref, edges, leaves(torch.float64), src_mode, return_edges, g_h.double(),
                               g_e.double())
    for a, b in zip(outs, ref_outs):
        torch.testing.assert_close(a.double(), b, rtol=1e-4, atol=1e-4)
    assert len(grads) == len(ref_grads)
    names = ["h_dst", "e"] + ([] if src_mode == "same" else ["h_src"]) + [n for n, _ in fast.named_parameters()]
    for name, a, b in zip(names, grads, ref_grads):
        assert (a is None) == (b is None), name
        if a is not None:
            torch.testing.assert_close(a.double(), b, rtol=1e-4, atol=1e-4, msg=lambda m: f"{name}: {m}")


def test_interaction_update_not_taken_on_cublas_path():
    """``edge_gemm="cublas"`` keeps the edge update as its own node and the node MLP as modules."""
    edges = _edges(7, 6, seed=1)
    layer = InteractionLayer(12, hidden=10, backend="triton", edge_gemm="cublas").to(DEVICE)
    h_new, _ = layer(torch.randn(1, 7, 12, device=DEVICE), torch.randn(1, 6, 12, device=DEVICE, requires_grad=True),
                     torch.randn(edges.num_edges, 12, device=DEVICE), edges)
    assert "InteractionUpdate" not in type(h_new.grad_fn).__name__


def _max_err(a: torch.Tensor, ref: torch.Tensor) -> float:
    return float((a.double() - ref).abs().max() / ref.abs().max().clamp_min(1e-30))


@pytest.mark.skipif(DEVICE.type != "cuda", reason="the Gluon kernel needs a Hopper GPU")
def test_linear_add_gluon_within_bf16_budget():
    """``x @ w + r`` by the Gluon residual product (odd row count, a partial last tile) against float64,
    within twice the error of torch's bf16 ``addmm``."""
    from weathergnn.ops.triton import edge_linear

    torch.manual_seed(0)
    x, w, r = (torch.randn(*s, device=DEVICE, dtype=torch.bfloat16) for s in ((20_037, 512), (512, 512), (20_037, 512)))
    if edge_linear._gluon(x, 512, 512, w, r) is None:
        pytest.skip("the Gluon kernels do not run here (not Hopper, or GLUON off)")
    ref = torch.addmm(r.double(), x.double(), w.double())
    ours = edge_linear.linear_add(x, w, r)
    torch_err = _max_err(torch.addmm(r, x, w), ref)
    assert _max_err(ours, ref) <= 2 * torch_err + 1e-6


@pytest.mark.skipif(DEVICE.type != "cuda", reason="bf16 error budget of the Gluon path: GPU only")
@pytest.mark.parametrize("src_mode", ["nodes", "same"])
def test_interaction_update_bf16_within_budget(src_mode):
    """Latent 512 in bf16 (the Gluon kernels' shapes): every output and gradient's error against float64
    at most 3x that of the same layer on the torch backend in bf16, plus a small floor."""
    torch.manual_seed(0)
    n_src, n_dst = (401, 401) if src_mode == "same" else (333, 401)
    edges = _edges(n_src, n_dst, seed=5)
    fast = InteractionLayer(512, backend="triton", edge_gemm="triton").to(DEVICE)
    ref64 = copy.deepcopy(fast).double()
    plain = copy.deepcopy(fast).bfloat16()
    for m in (ref64, plain):
        m.backend = m.edge_mlp.backend = m.node_mlp.backend = "torch"
    fast = fast.bfloat16()
    gen = torch.Generator().manual_seed(1)
    base = [torch.randn(1, n_src, 512, generator=gen), torch.randn(1, n_dst, 512, generator=gen),
            torch.randn(edges.num_edges, 512, generator=gen)]
    g_h = torch.randn(1, n_dst, 512, generator=gen).to(DEVICE)
    g_e = torch.randn(1, edges.num_edges, 512, generator=gen).to(DEVICE)

    def run(layer, dtype):
        leaves = [x.to(DEVICE, dtype).clone().requires_grad_() for x in base]
        return _run(layer, edges, leaves, src_mode, True, g_h, g_e)

    outs, grads = run(fast, torch.bfloat16)
    assert "InteractionUpdate" in type(outs[0].grad_fn).__name__
    ref_outs, ref_grads = run(ref64, torch.float64)
    plain_outs, plain_grads = run(plain, torch.bfloat16)
    for a, p, ref in zip(outs + grads, plain_outs + plain_grads, ref_outs + ref_grads):
        assert _max_err(a, ref) <= 3 * _max_err(p, ref) + 1e-3


def test_interaction_update_needs_senders():
    edges = _edges(7, 6, seed=1)
    layer = InteractionLayer(12, hidden=10, backend="triton", edge_gemm="triton").to(DEVICE)
    with pytest.raises(ValueError, match="h_src or their projections p_src"):
        layer(None, torch.randn(1, 6, 12, device=DEVICE), torch.randn(edges.num_edges, 12, device=DEVICE), edges)


@pytest.mark.parametrize("checkpoint", [False, True])
def test_encode_process_decode_one_node_equals_torch(monkeypatch, checkpoint):
    """The whole model with every interaction layer as one node (mappers with projections given and
    receiver chunks, processor with senders = receivers) against the torch backend: output and every
    parameter gradient; also with the blocks and one processor layer recomputed in backward (the node's
    saved tensors then go through the checkpoint's saved-tensor hooks)."""
    from graph_fixtures import random_graphs
    from module_compare import compare_modules

    from weathergnn.models.graph_model import EncodeProcessDecode
    from weathergnn.ops import interaction_edge

    calls = []
    apply = interaction_edge.InteractionUpdate.apply
    monkeypatch.setattr(interaction_edge.InteractionUpdate, "apply", lambda *a: calls.append(a[-2]) or apply(*a))
    torch.manual_seed(0)
    model = EncodeProcessDecode(random_graphs(), 5, 3, latent=8, layers=2, mapper_chunks=(2, 3),
                                checkpoint=checkpoint, checkpoint_processor=1 if checkpoint else None,
                                edge_gemm="triton").to(DEVICE)
    compare_modules(model, lambda: (torch.randn(2, model.num_grid_nodes, 5, device=DEVICE),))
    # all on the triton pass (the torch backend never takes the node): 2 encoder chunks, 2 processor layers,
    # 3 decoder chunks; recomputed in backward with checkpointing: the mapper blocks and one processor layer
    assert sorted(set(calls)) == ["given", "same"] and len(calls) == (13 if checkpoint else 7)
