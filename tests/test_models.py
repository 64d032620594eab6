"""models: MLPs, interaction and fused layers, processor, encoder-processor-decoder.

Layers are checked against brute-force float64 per-edge loops (numpy) on tiny
synthetic graphs from graph_fixtures (no dependency on weathergnn.graphs.build).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from weathergnn.models.graph_model import EncodeProcessDecode
from weathergnn.models.mlp import MLP, EdgeMLP
from weathergnn.models.processors import EdgeBuffers, FusedLayer, InteractionLayer, Processor, checkpointed_layers

from graph_fixtures import permute_mesh, random_edge_set, random_graphs

# ---------------------------------------------------------------- numpy references


def np_silu(x):
    return x / (1.0 + np.exp(-x))


def np_layer_norm(x, ln):
    mu = x.mean(-1, keepdims=True)
    var = x.var(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + ln.eps) * ln.weight.detach().numpy() + ln.bias.detach().numpy()


def np_lin(x, lin, weight=None):
    w = (lin.weight if weight is None else weight).detach().numpy()
    y = x @ w.T
    return y + lin.bias.detach().numpy() if lin.bias is not None else y


def np_mlp(x, mlp):
    y = np_lin(np_silu(np_lin(x, mlp.lin1)), mlp.lin2)
    return np_layer_norm(y, mlp.norm) if isinstance(mlp.norm, torch.nn.LayerNorm) else y


def np_interaction(layer, h_src, h_dst, e, es):
    """Per-edge loop of e' = e + MLP_e([e, h_j, h_i]); h' = h + MLP_n([h, sum e'])."""
    em = layer.edge_mlp
    w1 = torch.cat([em.lin_edge.weight, em.lin_src.weight, em.lin_dst.weight], 1).detach().numpy()
    b1 = em.lin_edge.bias.detach().numpy()
    src, dst = es.src.numpy(), es.dst.numpy()
    bsz, nd, lat = h_dst.shape
    e_new = np.zeros((bsz, src.shape[0], lat))
    agg = np.zeros((bsz, nd, lat))
    for b in range(bsz):
        for k in range(src.shape[0]):
            z = w1 @ np.concatenate([e[k], h_src[b, src[k]], h_dst[b, dst[k]]]) + b1
            y = np_layer_norm(np_lin(np_silu(z), em.lin2), em.norm)
            e_new[b, k] = e[k] + y
            agg[b, dst[k]] += e_new[b, k]
    h_new = h_dst + np_mlp(np.concatenate([h_dst, agg], -1), layer.node_mlp)
    return h_new, e_new


def np_fused(layer, h, es):
    """Per-edge loop of the fused layer equations (heads from layer.heads)."""
    src, dst = es.src.numpy(), es.dst.numpy()
    feats, weight = es.features.numpy(), es.weight.numpy()
    bsz, n, lat = h.shape
    d = lat // layer.heads
    m = np.zeros_like(h)
    for k in range(src.shape[0]):
        alpha = 1.0 + np_mlp(feats[k], layer.alpha_mlp)  # [H]
        for hd in range(layer.heads):
            sl = slice(hd * d, (hd + 1) * d)
            m[:, dst[k], sl] += alpha[hd] * weight[k] * h[:, src[k], sl]
    z = h + np_layer_norm(np_silu(np_lin(np.concatenate([h, m], -1), layer.lin)), layer.norm)
    return z + np_mlp(z, layer.node_mlp)


# ---------------------------------------------------------------- tests


def test_mlp_shapes_and_no_layer_norm():
    x = torch.randn(2, 5, 7)
    assert MLP(7, 16, 3)(x).shape == (2, 5, 3)
    head = MLP(7, 16, 3, layer_norm=False)
    assert isinstance(head.norm, torch.nn.Identity)
    np.testing.assert_allclose(
        head(x).detach().numpy(), np_mlp(x.numpy().astype(np.float64), head), rtol=1e-4, atol=1e-5
    )


@pytest.mark.parametrize("batched_edges", [False, True])
def test_edge_mlp_split_equals_concat(batched_edges):
    torch.manual_seed(0)
    es = random_edge_set(6, 5, seed=3)
    ne, ns, nd = 4, 7, 5
    concat = MLP(ne + ns + nd, 13, 11).double()
    split = EdgeMLP(ne, ns, nd, 13, 11).double()
    split.load_from_concat(concat)
    e = torch.randn((2, es.num_edges, ne) if batched_edges else (es.num_edges, ne), dtype=torch.float64)
    h_src = torch.randn(2, 6, ns, dtype=torch.float64)
    h_dst = torch.randn(2, 5, nd, dtype=torch.float64)
    e_b = e.expand(2, -1, -1)
    ref = concat(torch.cat([e_b, h_src[:, es.src], h_dst[:, es.dst]], -1))
    out = split(e, h_src, h_dst, EdgeBuffers(es))
    assert out.shape == (2, es.num_edges, 11)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)


def test_interaction_layer_vs_loop():
    torch.manual_seed(1)
    es = random_edge_set(7, 6, max_degree=5, seed=4)
    layer = InteractionLayer(8, hidden=12).double()
    edges = EdgeBuffers(es).double()
    h_src = torch.randn(2, 7, 8, dtype=torch.float64)
    h_dst = torch.randn(2, 6, 8, dtype=torch.float64)
    e = torch.randn(es.num_edges, 8, dtype=torch.float64)
    h_new, e_new = layer(h_src, h_dst, e, edges)
    assert h_new.shape == (2, 6, 8) and e_new.shape == (2, es.num_edges, 8)
    h_ref, e_ref = np_interaction(layer, h_src.numpy(), h_dst.numpy(), e.numpy(), es)
    np.testing.assert_allclose(e_new.detach().numpy(), e_ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(h_new.detach().numpy(), h_ref, rtol=1e-10, atol=1e-10)
    h_only, none = layer(h_src, h_dst, e, edges, return_edges=False)  # last layer on an edge set
    assert none is None
    np.testing.assert_allclose(h_only.detach().numpy(), h_ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("heads", [1, 2])
def test_fused_layer_vs_loop(heads):
    torch.manual_seed(2)
    es = random_edge_set(9, 9, max_degree=5, seed=5)
    layer = FusedLayer(8, hidden=12, heads=heads).double()
    edges = EdgeBuffers(es).double()
    h = torch.randn(2, 9, 8, dtype=torch.float64)
    out = layer(h, edges)
    assert out.shape == (2, 9, 8)
    np.testing.assert_allclose(out.detach().numpy(), np_fused(layer, h.numpy(), es), rtol=1e-10, atol=1e-10)


def test_fused_layer_gradcheck():
    torch.manual_seed(3)
    es = random_edge_set(5, 5, max_degree=3, seed=6)
    layer = FusedLayer(4, hidden=6, alpha_hidden=3, heads=2).double()
    edges = EdgeBuffers(es).double()
    h = torch.randn(1, 5, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda h: layer(h, edges), (h,))


@pytest.mark.parametrize("kind", ["interaction", "fused"])
def test_processor_checkpoint_same_output_and_grads(kind):
    torch.manual_seed(4)
    es = random_edge_set(10, 10, seed=7)
    proc = Processor(kind, 8, 3, es, checkpoint=False).double()
    h = torch.randn(2, 10, 8, dtype=torch.float64, requires_grad=True)
    e = torch.randn(es.num_edges, 8, dtype=torch.float64, requires_grad=True)
    calls = [0] * 3  # forward runs per layer: twice for a recomputed one
    for i, layer in enumerate(proc.layers):
        layer.register_forward_pre_hook(lambda *_, i=i: calls.__setitem__(i, calls[i] + 1))  # recompute may stop early
    results = []
    for ckpt, recomputed in ((False, [1, 1, 1]), (True, [2, 2, 2]), (2, [2, 2, 1]), (0, [1, 1, 1])):
        proc.checkpointed_layers = checkpointed_layers(ckpt, 3)
        proc.zero_grad()
        h.grad = e.grad = None
        calls[:] = [0] * 3
        out = proc(h, e if kind == "interaction" else None)
        (out * torch.linspace(-1, 1, out.shape[-1], dtype=torch.float64)).sum().backward()
        assert calls == recomputed, ckpt
        grads = [p.grad.clone() for p in proc.parameters()] + [h.grad.clone()]
        if kind == "interaction":
            grads.append(e.grad.clone())
        results.append((out.detach(), grads))
    for other in results[1:]:
        torch.testing.assert_close(other[0], results[0][0], rtol=0, atol=0)
        for g0, g1 in zip(results[0][1], other[1], strict=True):
            torch.testing.assert_close(g1, g0, rtol=1e-12, atol=1e-12)
    assert len(proc.layers) == 3
    assert proc.layers[0].node_mlp.lin1.weight is not proc.layers[1].node_mlp.lin1.weight


def test_processor_checkpoint_layer_count_checked():
    with pytest.raises(ValueError, match="checkpoint: 4 processor layers to recompute, but there are 3"):
        Processor("interaction", 8, 3, random_edge_set(4, 4), checkpoint=4)
    with pytest.raises(ValueError, match="checkpoint: -1"):
        checkpointed_layers(-1, 3)


def test_processor_rejects_unknown_kind():
    with pytest.raises(ValueError, match="kind"):
        Processor("gat", 8, 2, random_edge_set(4, 4))


@pytest.mark.parametrize("kind", ["interaction", "fused"])
def test_encode_process_decode_forward_backward(kind):
    torch.manual_seed(5)
    graphs = random_graphs()
    model = EncodeProcessDecode(graphs, in_channels=5, out_channels=3, latent=16, layers=2, processor=kind)
    x = torch.randn(2, graphs.num_grid_nodes, 5)
    y = model(x)
    assert y.shape == (2, graphs.num_grid_nodes, 3)
    y.square().mean().backward()
    named = list(model.named_parameters())
    missing = [n for n, p in named if p.grad is None]
    assert not missing, missing
    assert all(torch.isfinite(p.grad).all() for _, p in named)
    nonzero = sum(bool(p.grad.abs().sum() > 0) for _, p in named)
    assert nonzero >= 0.9 * len(named)
    if kind == "fused":
        assert model.mesh_edge_embed is None


def test_encode_process_decode_buffers_not_in_state_dict_and_follow_dtype():
    graphs = random_graphs()
    model = EncodeProcessDecode(graphs, 5, 3, latent=8, layers=1)
    buffers = {name for name, _ in model.named_buffers()}
    assert {"grid_features", "g2m_chunks.0.src", "m2g_chunks.0.dst_ptr", "processor.edges.weight"} <= buffers
    assert not buffers & set(model.state_dict())  # graph rebuilt from the cache, not saved
    model = model.double()
    assert model.g2m.features.dtype == torch.float64 and model.g2m.src.dtype == torch.int64
    assert model(torch.randn(1, graphs.num_grid_nodes, 5, dtype=torch.float64)).dtype == torch.float64


def test_encode_process_decode_triton_backend_unavailable(monkeypatch):
    # Without a CUDA device or the Triton interpreter, asking for Triton fails at construction.
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="triton"):
        EncodeProcessDecode(random_graphs(), 5, 3, latent=8, layers=1, backend="triton")


@pytest.mark.parametrize("kind", ["interaction", "fused"])
def test_mesh_permutation_equivariance(kind):
    torch.manual_seed(6)
    graphs = random_graphs(seed=11)
    perm = torch.randperm(graphs.num_mesh_nodes, generator=torch.Generator().manual_seed(0))
    a = EncodeProcessDecode(graphs, 5, 3, latent=16, layers=2, processor=kind).double()
    b = EncodeProcessDecode(permute_mesh(graphs, perm), 5, 3, latent=16, layers=2, processor=kind).double()
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, graphs.num_grid_nodes, 5, dtype=torch.float64)
    torch.testing.assert_close(a(x), b(x), rtol=1e-10, atol=1e-10)


def test_bf16_autocast_cpu_forward_backward():
    # The CUDA path is the same code; on CPU autocast also mixes bf16 Linear outputs
    # with float32 LayerNorm / graph tensors, which exercises the dtype handling.
    torch.manual_seed(7)
    graphs = random_graphs()
    for kind in ("interaction", "fused"):
        model = EncodeProcessDecode(graphs, 5, 3, latent=16, layers=2, processor=kind, checkpoint=True)
        x = torch.randn(2, graphs.num_grid_nodes, 5)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = model(x)
        y.float().square().mean().backward()
        assert torch.isfinite(y.float()).all()
        assert all(p.grad is not None for p in model.parameters())


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_bf16_autocast_cuda_forward_backward():
    torch.manual_seed(8)
    graphs = random_graphs()
    for kind in ("interaction", "fused"):
        model = EncodeProcessDecode(graphs, 5, 3, latent=16, layers=2, processor=kind, checkpoint=True).cuda()
        x = torch.randn(2, graphs.num_grid_nodes, 5, device="cuda")
        ref = model(x)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            y = model(x)
        y.float().square().mean().backward()
        assert all(p.grad is not None for p in model.parameters())
        torch.testing.assert_close(y.float(), ref, rtol=0.1, atol=0.1)


@pytest.mark.parametrize("kind", ["interaction", "fused"])
def test_overfits_tiny_problem(kind):
    torch.manual_seed(9)
    graphs = random_graphs(num_grid=20, num_mesh=8)
    model = EncodeProcessDecode(graphs, 4, 2, latent=16, layers=2, processor=kind)
    x = torch.randn(2, graphs.num_grid_nodes, 4)
    target = torch.sin(3 * x[..., :2]) + x[..., 2:3] * x[..., 3:4]  # [B, G, 2], node-local
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(60):
        opt.zero_grad()
        loss = (model(x) - target).square().mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0], losses[::10]


@pytest.mark.parametrize("checkpoint", [False, True])
def test_mapper_chunks_give_the_same_model(checkpoint):
    """Encoder/decoder over receiver chunks == unchunked: outputs and every gradient (float64)."""
    graphs = random_graphs()
    torch.manual_seed(0)
    ref = EncodeProcessDecode(graphs, 5, 3, latent=8, layers=2).double()
    torch.manual_seed(0)
    chunked = EncodeProcessDecode(graphs, 5, 3, latent=8, layers=2, mapper_chunks=3, checkpoint=checkpoint).double()
    assert len(chunked.m2g_chunks) == 3 and sum(c.num_edges for c in chunked.m2g_chunks) == graphs.mesh2grid.num_edges
    assert_same_model(chunked, ref, torch.randn(2, graphs.num_grid_nodes, 5, dtype=torch.float64))


def assert_same_model(model, ref, x):
    """``model(x) == ref(x)`` and every parameter gradient of ``sum(out ** 2)`` equal (float64)."""
    out, out_ref = model(x), ref(x)
    torch.testing.assert_close(out, out_ref, rtol=1e-12, atol=1e-12)
    out_ref.square().sum().backward()
    out.square().sum().backward()
    for (name, p_ref), p in zip(ref.named_parameters(), model.parameters()):
        torch.testing.assert_close(p.grad, p_ref.grad, rtol=1e-10, atol=1e-12, msg=name)


def test_mapper_chunks_rejects_zero():
    with pytest.raises(ValueError, match="mapper_chunks"):
        EncodeProcessDecode(random_graphs(), 5, 3, latent=8, layers=1, mapper_chunks=0)
    with pytest.raises(ValueError, match="align must be >= 1, got 0"):
        EncodeProcessDecode(random_graphs(), 5, 3, latent=8, layers=1, align=0)


def test_mlp_forward_concat_equals_forward_on_cat():
    """The split first layer equals the MLP on the concatenation: output and every gradient (float64)."""
    from weathergnn.models.mlp import MLP

    torch.manual_seed(0)
    mlp = MLP(7, 6, 5).double()
    a = torch.randn(2, 4, 3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(2, 4, 4, dtype=torch.float64, requires_grad=True)
    g = torch.randn(2, 4, 5, dtype=torch.float64)
    ref = mlp(torch.cat([a, b], dim=-1))
    grads_ref = torch.autograd.grad(ref, [a, b, *mlp.parameters()], g)
    out = mlp.forward_concat(a, b)
    grads = torch.autograd.grad(out, [a, b, *mlp.parameters()], g)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    for x, y in zip(grads, grads_ref):
        torch.testing.assert_close(x, y, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="in_features"):
        mlp.forward_concat(a, a)


@pytest.mark.parametrize("layer_norm", [True, False])
def test_mlp_align_and_residual_change_nothing(layer_norm):
    """Zero-padded products (align) and the residual argument give MLP(x) and r + MLP(x): value and every gradient."""
    torch.manual_seed(0)
    ref = MLP(11, 6, 5, layer_norm=layer_norm).double()
    mlp = MLP(11, 6, 5, layer_norm=layer_norm, align=8).double()
    mlp.load_state_dict(ref.state_dict())
    assert (mlp.in_pad, mlp.out_pad) == (5, 3) and (ref.in_pad, ref.out_pad) == (0, 0)
    x = torch.randn(2, 4, 11, dtype=torch.float64, requires_grad=True)
    r = torch.randn(2, 4, 5, dtype=torch.float64, requires_grad=True)
    g = torch.randn(2, 4, 5, dtype=torch.float64)
    want = r + ref(x)
    grads_want = torch.autograd.grad(want, [x, r, *ref.parameters()], g)
    for inp in (x, torch.nn.functional.pad(x, (0, 5))):  # as is, and already zero-padded by the caller
        out = mlp(inp, residual=r)
        assert out.shape == (2, 4, 5)
        grads = torch.autograd.grad(out, [x, r, *mlp.parameters()], g)
        torch.testing.assert_close(out, want, rtol=1e-12, atol=1e-12)
        for a, b in zip(grads, grads_want):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="expected 11 or 16"):
        mlp(torch.zeros(1, 12, dtype=torch.float64))


def test_encode_process_decode_alignment_is_exact():
    """Aligned embedders (grid 6 + 3 inputs -> 16, mesh / edge features -> 8) and output head (3 -> 8)
    equal the unpadded model (align=1): output and every gradient, float64."""
    graphs = random_graphs()
    torch.manual_seed(0)
    model = EncodeProcessDecode(graphs, 6, 3, latent=8, layers=2).double()
    n_edge_f = graphs.grid2mesh.features.shape[-1]
    assert (model.grid_embed.in_pad, model.output.out_pad) == (7, 5)
    assert model.m2g_edge_embed.in_pad == -n_edge_f % 8 > 0
    ref = EncodeProcessDecode(graphs, 6, 3, latent=8, layers=2, align=1).double()
    ref.load_state_dict(model.state_dict())
    assert (ref.grid_embed.in_pad, ref.output.out_pad, ref.m2g_edge_embed.in_pad) == (0, 0, 0)
    assert_same_model(model, ref, torch.randn(2, graphs.num_grid_nodes, 6, dtype=torch.float64))


def test_compile_blocks_keeps_checkpointing_and_chunking_exact(monkeypatch):
    """Per-block torch.compile (aot_eager) with checkpointing and [encoder, decoder] chunks equals eager."""
    import numpy as np
    import torch._dynamo

    # compile_blocks raises dynamo's global recompile limit: restore it, and leave no compiled state behind
    monkeypatch.setattr(torch._dynamo.config, "recompile_limit", torch._dynamo.config.recompile_limit)
    torch._dynamo.reset()

    from weathergnn.graphs.build import build_graphs
    from weathergnn.models.graph_model import EncodeProcessDecode

    graphs = build_graphs(np.linspace(-90, 90, 13), np.arange(24) * 15.0, 1)
    torch.manual_seed(0)
    kw = dict(latent=8, layers=2, checkpoint=True, backend="torch")
    eager = EncodeProcessDecode(graphs, 5, 3, mapper_chunks=1, **kw)
    compiled = EncodeProcessDecode(graphs, 5, 3, mapper_chunks=(2, 3), checkpoint_processor=False, **kw)
    compiled.load_state_dict(eager.state_dict())
    compiled.compile_blocks(backend="aot_eager", dynamic=False)
    x = torch.randn(2, graphs.num_grid_nodes, 5)
    outs = []
    for model in (eager, compiled):
        y = model(x)
        grads = torch.autograd.grad(y.square().sum(), list(model.parameters()))
        outs.append([y.detach(), *grads])
    for a, b in zip(*outs):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)
    assert len(compiled.g2m_chunks) == 2 and len(compiled.m2g_chunks) == 3
    assert compiled.processor.checkpointed_layers == 0
    torch._dynamo.reset()


def test_mapper_chunks_config_forms():
    from weathergnn.config import ConfigError, load_config

    assert load_config("quickstart", {"model.mapper_chunks": [2, 8]}).model.mapper_chunks == (2, 8)
    assert load_config("quickstart", {"model.compile": True}).model.compile is True
    with pytest.raises(ConfigError, match="mapper_chunks"):
        load_config("quickstart", {"model.mapper_chunks": [0, 8]})
    assert load_config("quickstart", {"model.checkpoint_processor": 1}).model.checkpoint_processor == 1
    assert load_config("quickstart", {"model.checkpoint_processor": False}).model.checkpoint_processor is False
    with pytest.raises(ConfigError, match="checkpoint_processor: 9 layers to recompute"):
        load_config("quickstart", {"model.checkpoint_processor": 9})


def test_edge_gemm_reaches_every_interaction_layer():
    """``model.edge_gemm`` is validated by the config and set on the encoder, processor and decoder layers."""
    from weathergnn.config import ConfigError, load_config

    assert load_config("quickstart").model.edge_gemm == "auto"
    assert load_config("quickstart", {"model.edge_gemm": "cublas"}).model.edge_gemm == "cublas"
    with pytest.raises(ConfigError, match="edge_gemm"):
        load_config("quickstart", {"model.edge_gemm": "cutlass"})
    model = EncodeProcessDecode(random_graphs(), 4, 3, latent=16, layers=2, backend="torch", edge_gemm="triton")
    layers = [model.encoder, model.decoder, *model.processor.layers]
    assert [layer.edge_gemm for layer in layers] == ["triton"] * 4


def _grads(model):
    return {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("checkpoint,chunks", [(False, 1), (True, 3), (True, (2, 4))])
def test_forward_backward_equals_forward_then_backward(checkpoint, chunks):
    """Decoder chunks with their loss's backward right after them == forward, whole loss, backward (float64).

    Loss: GraphCast's latitude-weighted MSE with non-uniform latitude and channel weights, split over the
    decoder chunks with the whole grid's weight sum; plus an extra loss term joining the final backward.
    """
    from weathergnn.training.losses import weighted_mse

    graphs = random_graphs()
    torch.manual_seed(0)
    model = EncodeProcessDecode(graphs, 5, 3, latent=8, layers=2, mapper_chunks=chunks, checkpoint=checkpoint).double()
    x = torch.randn(2, graphs.num_grid_nodes, 5, dtype=torch.float64)
    target = torch.randn(2, graphs.num_grid_nodes, 3, dtype=torch.float64)
    lat_w = torch.rand(graphs.num_grid_nodes, dtype=torch.float64) + 0.5
    ch_w = torch.tensor([1.0, 0.1, 0.5], dtype=torch.float64)
    extra_param = model.output.lin2.bias  # an extra loss term through a parameter the chunks also reach

    loss_ref = weighted_mse(model(x), target, lat_w, ch_w) + extra_param.square().sum()
    loss_ref.backward()
    ref = _grads(model)
    model.zero_grad(set_to_none=True)

    seen = []

    def chunk_loss(y_k, lo, hi):
        seen.append((lo, hi, tuple(y_k.shape)))
        return weighted_mse(y_k, target[:, lo:hi], lat_w[lo:hi], ch_w, lat_weight_sum=lat_w.sum())

    extra = extra_param.square().sum()
    loss = model.forward_backward(x, chunk_loss, extra_roots=lambda: [(extra, None)]) + extra.detach().float()
    n_dec = chunks if isinstance(chunks, int) else chunks[1]
    assert [(lo, hi) for lo, hi, _ in seen] == model.decoder_chunk_bounds() and len(seen) == n_dec
    assert seen[-1][1] == graphs.num_grid_nodes and all(s[2] == (2, s[1] - s[0], 3) for s in seen)
    torch.testing.assert_close(loss, loss_ref.detach().float(), rtol=1e-6, atol=0)
    got = _grads(model)
    assert got.keys() == ref.keys()
    for name in ref:
        torch.testing.assert_close(got[name], ref[name], rtol=1e-10, atol=1e-12, msg=name)


def test_forward_backward_errors():
    model = EncodeProcessDecode(random_graphs(), 5, 3, latent=8, layers=1, mapper_chunks=2)
    x = torch.randn(1, model.num_grid_nodes, 5)
    with pytest.raises(ValueError, match="0-dim tensor.*grid nodes 0\\.\\."):
        model.forward_backward(x, lambda y, lo, hi: y.square().sum(-1))
    with torch.no_grad(), pytest.raises(RuntimeError, match="gradients enabled"):
        model.forward_backward(x, lambda y, lo, hi: y.sum())
