"""The benchmark cases and, for each, the implementations compared.

A case is set up by an implementation's ``setup(ctx, graph)`` into a
:class:`Prepared` step (one timed iteration) plus an untimed ``reset``. Shapes:
``B = 1`` batch, ``Ns``/``Nd`` sender/receiver nodes of the edge set, ``E``
edges, ``L`` latent; every tensor is bf16 on the device unless said otherwise.

``sum`` -- sum aggregation ``out = A h`` on one edge set: h [1, Ns, L] requiring
grad, out [1, Nd, L], step = forward + ``out.backward(g)`` with g [1, Nd, L]
random. Implementations: ours (``weathergnn.ops.dispatch.neighbour_sum``,
coefficients None, backend torch / triton), plain torch index_add and
segment_reduce (sorted), ``torch.compile``-d index_add, PyG ``utils.scatter``
and a PyG ``MessagePassing`` (eager and compiled), cuSPARSE SpMM on a CSR
matrix of ones (fp32 h [Ns, L], as the anchors).

``interaction`` -- one GraphCast interaction-network layer on one edge set:
module cast to bf16; h_src [1, Ns, L], h_dst [1, Nd, L], e [1, E, L] requiring
grad; step = ``(h_dst', e') = layer(...)`` then the backward of
``(h_dst' * g1).sum() + (e' * g2).sum()`` with g1 [1, Nd, L], g2 [1, E, L]
random, computed as ``torch.autograd.backward((h_dst', e'), (g1, g2))`` (the
same gradients, without materialising the two products). Ours
(:class:`weathergnn.models.processors.InteractionLayer`, torch eager / compiled,
triton) vs the PyG layer of :mod:`.baselines` (eager / compiled). The
``*-cudagraph-compiled`` impls (ours with the fused GEMMs, and PyG) replay the
whole step (gradients reset, forward, backward) as one CUDA graph captured
during set-up, as the layers run inside the configured training step.

``fused`` -- one :class:`weathergnn.models.processors.FusedLayer` on one edge
set: module cast to bf16, senders h [1, Ns, L] (and receivers h_dst [1, Nd, L]
on grid2mesh / mesh2grid) requiring grad; step = forward + ``h'.backward(g)``,
g [1, Nd, L] random. Ours torch eager / compiled and triton.

``step`` -- one training step of the ``era5-0.25deg-graphcast`` configuration
(84 channels, 16 processor layers) at the chosen latent, batch 1: input x
[1, G, 2*84 + 3*5 + 2] (two states, forcings at three times, two static
fields, as ``training.setup.build_forecaster``), bf16 autocast, fp32
parameters, loss = GraphCast weighted MSE (latitude and channel weights,
``training.losses.weighted_mse``) against a random target, backward,
AdamW step (``fused=True`` on CUDA). Ours
(:class:`weathergnn.models.graph_model.EncodeProcessDecode`, ``checkpoint=True``,
interaction or fused processor, backend torch / triton) vs the PyG model of
:mod:`.baselines` (checkpointed encoder, processor layers and decoder; eager
and compiled). ``zero_grad(set_to_none=True)`` is the untimed reset. The
``*-decoderloss`` variants run forward, loss and backward through
``EncodeProcessDecode.forward_backward`` (each decoder chunk once, its share
of the same loss back-propagated right after it; the training loop's
``training.decoder_loss_backward``).

``locality`` -- ``sum`` and ``fused`` (ours, torch and triton) on graphs built
with the mesh orderings ``natural``, ``random`` and ``hilbert``.
"""

from __future__ import annotations

import importlib
import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from weathergnn.benchmarking import baselines
from weathergnn.benchmarking.bytes_model import sum_aggregation_bytes
from weathergnn.graphs.build import build_graphs
from weathergnn.graphs.types import EdgeSet, WeatherGraphs
from weathergnn.models.processors import EdgeBuffers, FusedLayer, InteractionLayer
from weathergnn.ops import dispatch

__all__ = [
    "CASES",
    "CASE_IMPLS",
    "GRAPH_NAMES",
    "LOCALITY_IMPLS",
    "LOCALITY_ORDERINGS",
    "CaseSkipped",
    "Context",
    "Impl",
    "Prepared",
    "grid_axes",
    "step_config",
]

CASES = ("sum", "interaction", "fused", "step", "locality")
GRAPH_NAMES = ("mesh", "grid2mesh", "mesh2grid")
LOCALITY_ORDERINGS = ("natural", "random", "hilbert")
#: (op, impl) pairs measured per ordering by the locality case.
LOCALITY_IMPLS = (("sum", "ours-torch"), ("sum", "ours-triton"), ("fused", "ours-torch"), ("fused", "ours-triton"))


class CaseSkipped(Exception):
    """An implementation cannot run here (backend or package unavailable); the message says why."""


@dataclass
class Prepared:
    """A set-up case: ``step()`` is timed, ``reset()`` runs untimed after each call.

    ``tensors`` names the inputs and output cotangents (e.g. ``h``, ``g``), so a
    caller can check gradients after a ``step()``; ``info`` goes into the record.
    """

    step: Callable[[], object]
    reset: Callable[[], object]
    info: dict = field(default_factory=dict)
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)


def grid_axes(grid_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """Global regular grid, poles included: lat [round(180/d) + 1] ascending, lon [round(360/d)] from 0.

    0.25 deg gives 721 x 1440 (the WeatherBench2 0.25 deg grid).

    Raises:
        ValueError: ``grid_deg`` not in (0, 90].
    """
    if not 0 < grid_deg <= 90:
        raise ValueError(f"--grid-deg must be in (0, 90] degrees, got {grid_deg}")
    n_lat = int(round(180 / grid_deg)) + 1
    return np.linspace(-90.0, 90.0, n_lat), np.arange(int(round(360 / grid_deg))) * grid_deg


def step_config() -> tuple[int, int, list[str]]:
    """(in_channels, layers, channels) of the ``era5-0.25deg-graphcast`` training step.

    ``in_channels = 2 C + 3 F + S`` exactly as ``training.setup.build_forecaster``
    with the 84 ``seed84`` channels, the 5 forcings and both static fields.
    """
    from weathergnn.config import load_config
    from weathergnn.data.channels import PRESETS
    from weathergnn.data.forcings import FORCING_NAMES
    from weathergnn.data.windows import STATIC_FIELDS

    cfg = load_config("era5-0.25deg-graphcast")
    channels = list(PRESETS[cfg.data.channels]) if isinstance(cfg.data.channels, str) else list(cfg.data.channels)
    in_channels = 2 * len(channels) + 3 * len(FORCING_NAMES) + len(STATIC_FIELDS)
    return in_channels, cfg.model.layers, channels


class Context:
    """What every case of one graph ordering shares: device, sizes, the graphs.

    Args:
        graphs: CPU graphs (built by :meth:`build`).
        device: where cases run.
        latent: feature / latent width ``L``.
        compile_backend: ``torch.compile`` backend for the ``*-compiled`` implementations.
        dtype: compute dtype of the layer and aggregation cases (bf16).
    """

    def __init__(self, graphs: WeatherGraphs, device: torch.device, latent: int,
                 compile_backend: str = "inductor", dtype: torch.dtype = torch.bfloat16):
        self.graphs = graphs
        self.device = device
        self.latent = latent
        self.compile_backend = compile_backend
        self.dtype = dtype
        self.build_s = float("nan")
        self._edges: dict[str, EdgeBuffers] = {}

    @classmethod
    def build(cls, grid_deg: float, refinement: int, ordering: str, device: torch.device, latent: int,
              compile_backend: str = "inductor") -> "Context":
        """Build the graphs of a regular ``grid_deg`` grid (timed into ``build_s``)."""
        lat, lon = grid_axes(grid_deg)
        t0 = time.perf_counter()
        graphs = build_graphs(lat, lon, refinement, ordering=ordering)
        ctx = cls(graphs, device, latent, compile_backend)
        ctx.build_s = time.perf_counter() - t0
        return ctx

    def edge_set(self, graph: str) -> EdgeSet:
        """The CPU :class:`EdgeSet` named ``mesh``, ``grid2mesh`` or ``mesh2grid``."""
        if graph not in GRAPH_NAMES:
            raise ValueError(f"unknown edge set {graph!r}; expected one of {GRAPH_NAMES}")
        return getattr(self.graphs, graph)

    def edges(self, graph: str) -> EdgeBuffers:
        """Device :class:`EdgeBuffers` of ``graph`` (float buffers in ``dtype``), built once and shared."""
        if graph not in self._edges:
            self._edges[graph] = EdgeBuffers(self.edge_set(graph)).to(device=self.device, dtype=self.dtype)
        return self._edges[graph]

    def release(self) -> None:
        """Drop the device copies of the edge sets."""
        self._edges.clear()

    def compile(self, fn, mode: str | None = None):
        """``torch.compile(fn)`` with this context's backend, static shapes (``mode="reduce-overhead"``: CUDA graphs)."""
        if mode is not None and self.compile_backend == "inductor":
            return torch.compile(fn, backend=self.compile_backend, dynamic=False, mode=mode)
        return torch.compile(fn, backend=self.compile_backend, dynamic=False)

    def require_backend(self, backend: str) -> None:
        """Raise :class:`CaseSkipped` when the ops backend cannot run on this device."""
        try:
            dispatch.resolve_backend(backend, self.device)
        except (RuntimeError, NotImplementedError) as err:
            raise CaseSkipped(str(err)) from None

    @staticmethod
    def require_pyg() -> None:
        """Raise :class:`CaseSkipped` when torch_geometric is not usable."""
        reason = baselines.pyg_unavailable_reason()
        if reason:
            raise CaseSkipped(reason)

    def randn(self, *shape: int, dtype: torch.dtype | None = None, grad: bool = False) -> torch.Tensor:
        return torch.randn(*shape, device=self.device, dtype=dtype or self.dtype, requires_grad=grad)


@dataclass(frozen=True)
class Impl:
    """One implementation of a case: ``setup(ctx, graph) -> Prepared``; ``default`` = in the default suite."""

    name: str
    setup: Callable[[Context, str], Prepared]
    default: bool = True

    @property
    def compiled(self) -> bool:
        """Runs under ``torch.compile`` (the name ends in ``-compiled``)."""
        return self.name.endswith("-compiled")


def _clear_grads(*tensors: torch.Tensor, module: torch.nn.Module | None = None) -> Callable[[], None]:
    def reset() -> None:
        for t in tensors:
            t.grad = None
        if module is not None:
            module.zero_grad(set_to_none=True)

    return reset


# ------------------------------------------------------------------ sum aggregation


def _sum_case(ctx: Context, graph: str, fn, *, dtype=None, batched=True) -> Prepared:
    """h [1, Ns, L] (or [Ns, L] unbatched) -> fn(h) [.., Nd, L]; step = forward + backward(g)."""
    es = ctx.edge_set(graph)
    dtype = dtype or ctx.dtype
    lead = (1,) if batched else ()
    h = ctx.randn(*lead, es.num_src, ctx.latent, dtype=dtype, grad=True)
    g = ctx.randn(*lead, es.num_dst, ctx.latent, dtype=dtype)

    def step() -> None:
        fn(h).backward(g)

    nbytes = sum_aggregation_bytes(es.num_src, es.num_dst, es.num_edges, ctx.latent, h.element_size())
    info = {"dtype": str(dtype).removeprefix("torch."), "bytes": nbytes.as_dict()}
    return Prepared(step, _clear_grads(h), info, {"h": h, "g": g})


def _ours_sum(backend: str):
    def setup(ctx: Context, graph: str) -> Prepared:
        ctx.require_backend(backend)
        edges = ctx.edges(graph)
        return _sum_case(ctx, graph, lambda h: dispatch.neighbour_sum(h, edges, None, backend=backend))

    return setup


def _index_arrays(ctx: Context, graph: str) -> tuple[torch.Tensor, torch.Tensor, int, int]:
    e = ctx.edges(graph)
    return e.src, e.dst, e.num_src, e.num_dst


def _index_add(compiled: bool):
    def setup(ctx: Context, graph: str) -> Prepared:
        src, dst, _, nd = _index_arrays(ctx, graph)
        f = ctx.compile(baselines.index_add_sum) if compiled else baselines.index_add_sum
        return _sum_case(ctx, graph, lambda h: f(h, src, dst, nd))

    return setup


def _segment_reduce(ctx: Context, graph: str) -> Prepared:
    e = ctx.edges(graph)
    lengths = (e.dst_ptr[1:] - e.dst_ptr[:-1]).unsqueeze(0).contiguous()  # [1, Nd]
    return _sum_case(ctx, graph, lambda h: baselines.segment_reduce_sum(h, e.src, lengths))


def _pyg_scatter(compiled: bool):
    def setup(ctx: Context, graph: str) -> Prepared:
        ctx.require_pyg()
        src, dst, _, nd = _index_arrays(ctx, graph)
        f = ctx.compile(baselines.pyg_scatter_sum) if compiled else baselines.pyg_scatter_sum
        return _sum_case(ctx, graph, lambda h: f(h, src, dst, nd))

    return setup


def _pyg_module(ctx: Context, graph: str, make: Callable[[], torch.nn.Module], compiled: bool):
    """A PyG module on the device (``make`` runs after the PyG check), the callable to time
    (compiled or not), ``edge_index`` [2, E] and the sizes (Ns, Nd) passed to ``propagate``."""
    ctx.require_pyg()
    src, dst, ns, nd = _index_arrays(ctx, graph)
    module = make().to(device=ctx.device, dtype=ctx.dtype)
    return module, ctx.compile(module) if compiled else module, torch.stack([src, dst]), (ns, nd)


def _pyg_mp(compiled: bool):
    def setup(ctx: Context, graph: str) -> Prepared:
        _, f, edge_index, size = _pyg_module(ctx, graph, baselines.pyg_sum_layer, compiled)
        return _sum_case(ctx, graph, lambda h: f(h, edge_index, size))

    return setup


def _cusparse(ctx: Context, graph: str) -> Prepared:
    src, dst, ns, nd = _index_arrays(ctx, graph)
    a = baselines.csr_adjacency(src, dst, ns, nd, torch.float32)  # [Nd, Ns] CSR
    return _sum_case(ctx, graph, lambda h: torch.sparse.mm(a, h), dtype=torch.float32, batched=False)


def _cusparse_pretransposed(ctx: Context, graph: str) -> Prepared:
    src, dst, ns, nd = _index_arrays(ctx, graph)
    a = baselines.csr_adjacency(src, dst, ns, nd, torch.float32)  # [Nd, Ns] CSR
    a_t = baselines.csr_adjacency(dst, src, nd, ns, torch.float32)  # [Ns, Nd] CSR, for the backward
    return _sum_case(ctx, graph, lambda h: baselines.csr_spmm_sum(h, a, a_t), dtype=torch.float32, batched=False)


# ------------------------------------------------------------------ layers


def _interaction_case(ctx: Context, graph: str, layer: torch.nn.Module, call) -> Prepared:
    es = ctx.edge_set(graph)
    h_src = ctx.randn(1, es.num_src, ctx.latent, grad=True)
    h_dst = ctx.randn(1, es.num_dst, ctx.latent, grad=True)
    e = ctx.randn(1, es.num_edges, ctx.latent, grad=True)
    g1 = ctx.randn(1, es.num_dst, ctx.latent)
    g2 = ctx.randn(1, es.num_edges, ctx.latent)

    def step() -> None:
        h_new, e_new = call(h_src, h_dst, e)
        torch.autograd.backward((h_new, e_new), (g1, g2))

    info = {"dtype": str(ctx.dtype).removeprefix("torch."), "params": sum(p.numel() for p in layer.parameters())}
    tensors = {"h_src": h_src, "h_dst": h_dst, "e": e, "g1": g1, "g2": g2}
    return Prepared(step, _clear_grads(h_src, h_dst, e, module=layer), info, tensors)


#: (encoder chunks, decoder chunks, processor layers recomputed) of era5-0.25deg-graphcast: its impls run by default.
GRAPHCAST_STEP = (2, 8, 2)

EDGE_GEMMS = {"triton": "Triton GEMMs with fused epilogues (edge_linear)", "cublas": "cuBLAS + separate kernels"}


def _ours_interaction(backend: str, compiled: bool, edge_gemm: str = "cublas", silu_gemm: str | None = None):
    """``edge_gemm``: the layer's setting, ``"cublas"`` or ``"triton"`` (not ``"auto"``: the record says which ran).
    ``silu_gemm``: another setting for the node MLP's second layer (None: ``edge_gemm``)."""

    def setup(ctx: Context, graph: str) -> Prepared:
        ctx.require_backend(backend)
        edges = ctx.edges(graph)
        layer = InteractionLayer(ctx.latent, backend=backend, edge_gemm=edge_gemm)
        if silu_gemm is not None:
            layer.node_mlp.silu_gemm = silu_gemm
        layer = layer.to(device=ctx.device, dtype=ctx.dtype)
        f = ctx.compile(layer) if compiled else layer
        prepared = _interaction_case(ctx, graph, layer, lambda hs, hd, e: f(hs, hd, e, edges))
        if backend == "triton":
            prepared.info["edge_gemms"] = EDGE_GEMMS[edge_gemm]
            prepared.info["node_mlp_silu_gemm"] = EDGE_GEMMS.get(layer.node_mlp.silu_gemm, layer.node_mlp.silu_gemm)
        return prepared

    return setup


def _pyg_interaction(compiled: bool):
    def setup(ctx: Context, graph: str) -> Prepared:
        layer, f, edge_index, size = _pyg_module(
            ctx, graph, lambda: baselines.pyg_interaction_layer(ctx.latent), compiled
        )
        return _interaction_case(ctx, graph, layer, lambda hs, hd, e: f(hs, hd, e, edge_index, size))

    return setup


def _fused_takes_receivers() -> bool:
    return "h_dst" in inspect.signature(FusedLayer.forward).parameters


def _ours_fused(backend: str, compiled: bool):
    def setup(ctx: Context, graph: str) -> Prepared:
        ctx.require_backend(backend)
        bipartite = graph != "mesh"
        if bipartite and not _fused_takes_receivers():
            raise CaseSkipped("FusedLayer.forward takes no h_dst: this version runs mesh -> mesh only")
        edges = ctx.edges(graph)
        layer = FusedLayer(ctx.latent, backend=backend).to(device=ctx.device, dtype=ctx.dtype)
        f = ctx.compile(layer) if compiled else layer
        es = ctx.edge_set(graph)
        h = ctx.randn(1, es.num_src, ctx.latent, grad=True)  # senders
        h_dst = ctx.randn(1, es.num_dst, ctx.latent, grad=True) if bipartite else None  # receivers
        inputs = (h, h_dst) if bipartite else (h,)
        g = ctx.randn(1, es.num_dst, ctx.latent)

        def step() -> None:
            out = f(h, edges, h_dst) if bipartite else f(h, edges)
            out.backward(g)

        info = {"dtype": str(ctx.dtype).removeprefix("torch."), "params": sum(p.numel() for p in layer.parameters())}
        tensors = {"h": h, "h_dst": h_dst, "g": g} if bipartite else {"h": h, "g": g}
        return Prepared(step, _clear_grads(*inputs, module=layer), info, tensors)

    return setup


# ------------------------------------------------------------------ training step


def _train_step(ctx: Context, model: torch.nn.Module, in_channels: int, channels: list[str],
                compiled: bool, info: dict, mode: str | None = None, memory_budget: float | None = None,
                decoder_loss: bool = False, cuda_graph: bool = False) -> Prepared:
    """``memory_budget``: the compiler partitioner's ``activation_memory_budget`` (fraction of the
    activations a whole-model compile may keep; it recomputes the cheapest rest), set while compiling.
    ``decoder_loss``: loss and backward through ``model.forward_backward`` (decoder chunks run once).
    ``cuda_graph``: the whole step (gradients reset, forward, backward, AdamW) warmed up and captured
    as one CUDA graph here, untimed (:class:`weathergnn.training.cuda_graph.CapturedStep`); each timed
    call is one replay."""
    from weathergnn.training.losses import channel_loss_weights, weighted_mse

    dev = ctx.device
    g = ctx.graphs.num_grid_nodes
    model = model.to(dev)
    forward = ctx.compile(model, mode) if compiled else model
    if compiled and memory_budget is not None:
        import torch._functorch.config as functorch_config

        compiled_forward = forward

        def forward(x):  # the budget is read when the graph is partitioned, at the first call
            with functorch_config.patch(activation_memory_budget=memory_budget):
                return compiled_forward(x)

        info = {**info, "activation_memory_budget": memory_budget}
    # capturable: the step count on the GPU, so that a captured AdamW step advances it on replay
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=dev.type == "cuda", capturable=cuda_graph)
    x = torch.randn(1, g, in_channels, device=dev)  # [1, G, C_in] float32
    target = torch.randn(1, g, len(channels), device=dev)  # [1, G, C]
    lat_w = ctx.graphs.latitude_weights.to(dev)  # [G]
    ch_w = channel_loss_weights(channels).to(dev)  # [C]

    lat_sum = lat_w.sum()

    def chunk_loss(y_k: torch.Tensor, lo: int, hi: int) -> torch.Tensor:  # this chunk's share of weighted_mse
        return weighted_mse(y_k.float(), target[:, lo:hi], lat_w[lo:hi], ch_w, lat_weight_sum=lat_sum)

    def step() -> None:
        if decoder_loss:
            with torch.autocast(dev.type, dtype=torch.bfloat16):
                model.forward_backward(x, chunk_loss)
        else:
            with torch.autocast(dev.type, dtype=torch.bfloat16):
                pred = forward(x)  # [1, G, C]
            weighted_mse(pred.float(), target, lat_w, ch_w).backward()
        opt.step()

    def zero_grad() -> None:
        opt.zero_grad(set_to_none=True)

    info = {**info, "in_channels": in_channels, "out_channels": len(channels), "latent": ctx.latent,
            "params_M": round(sum(p.numel() for p in model.parameters()) / 1e6, 3), "autocast": "bfloat16",
            "optimizer": ("AdamW(fused, capturable)" if cuda_graph else "AdamW(fused)") if dev.type == "cuda"
            else "AdamW",
            **({"loss_backward": "EncodeProcessDecode.forward_backward (decoder chunks with their loss)"}
               if decoder_loss else {})}
    prepared = Prepared(step, zero_grad, info, {"x": x, "target": target})
    return _capture(prepared, dev, "whole step") if cuda_graph else prepared


def _ours_step(processor: str, backend: str, mapper_chunks: int | tuple[int, int] = 1, compiled: bool = False,
               mode: str | None = None, blocks: bool = False, checkpoint_processor: bool | int = True,
               memory_budget: float | None = None, edge_gemm: str = "cublas", align: int | None = None,
               mapper_edge_gemm: str | None = None, decoder_loss: bool = False, narrow: bool = True,
               bias_in_norm: bool = True, cuda_graph: bool = False, silu_gemm: str | None = None):
    """``compiled``: ``torch.compile`` of the whole model, or with ``blocks`` of each block
    (``EncodeProcessDecode.compile_blocks``, checkpointing left in eager). ``edge_gemm``:
    as :func:`_ours_interaction`. ``align``: ``EncodeProcessDecode``'s (None: its default).
    ``mapper_edge_gemm``: another setting for the encoder and decoder (None: ``edge_gemm``).
    ``decoder_loss``: as :func:`_train_step` (per-block compilation only). ``narrow``: False runs the
    embedders' first layers as cuBLAS and a SiLU pass (``MLP.narrow`` off) for a same-run comparison;
    ``bias_in_norm``: False keeps the MLPs' second-layer bias in the product (``MLP.bias_in_norm`` off).
    ``cuda_graph``: as :func:`_train_step` (per-block compilation or none). ``silu_gemm``: every MLP's
    second layer with its SiLU (``MLP.silu_gemm``; None: the model's ``edge_gemm``)."""

    def setup(ctx: Context, graph: str) -> Prepared:
        prepared = _build(ctx)
        if backend == "triton" and processor == "interaction":
            prepared.info["edge_gemms"] = EDGE_GEMMS[edge_gemm]
            if mapper_edge_gemm is not None:
                prepared.info["mapper_edge_gemms"] = EDGE_GEMMS[mapper_edge_gemm]
        return prepared

    def _build(ctx: Context) -> Prepared:
        from weathergnn.models.graph_model import ALIGN, EncodeProcessDecode

        ctx.require_backend(backend)
        in_channels, layers, channels = step_config()
        checkpoint = memory_budget is None  # with a budget the compiler chooses what to recompute
        model = EncodeProcessDecode(ctx.graphs, in_channels, len(channels), latent=ctx.latent, layers=layers,
                                    processor=processor, checkpoint=checkpoint, backend=backend,
                                    mapper_chunks=mapper_chunks, checkpoint_processor=checkpoint_processor,
                                    edge_gemm=edge_gemm, align=align)
        if mapper_edge_gemm is not None:
            model.encoder.edge_gemm = model.decoder.edge_gemm = mapper_edge_gemm
        if not (narrow and bias_in_norm) or silu_gemm is not None:
            from weathergnn.models.mlp import MLP

            for m in model.modules():
                if isinstance(m, MLP):
                    m.narrow, m.bias_in_norm = m.narrow and narrow, bias_in_norm
                    m.silu_gemm = m.silu_gemm if silu_gemm is None else silu_gemm
        n_ckpt = model.processor.checkpointed_layers
        proc_ckpt = "each processor layer, " if n_ckpt == layers else (
            f"the first {n_ckpt} of {layers} processor layers, " if n_ckpt else "")
        ckpt = ("grid embedding, encoder (per chunk), grid update, " + proc_ckpt + "decoder (per chunk)"
                ) if checkpoint else "none"
        info = {"layers": layers, "processor": processor, "mapper_chunks": mapper_chunks, "checkpoint": ckpt,
                "align": ALIGN if align is None else align}
        if not narrow:
            info["narrow_embedder_first_layer"] = False
        if not bias_in_norm:
            info["mlp_bias_in_layer_norm"] = False
        if silu_gemm is not None:
            info["mlp_silu_gemm"] = EDGE_GEMMS.get(silu_gemm, silu_gemm)
        if mode is not None:
            info["compile_mode"] = mode
        if compiled and blocks:
            info["compile"] = "per block (EncodeProcessDecode.compile_blocks)"
            model.compile_blocks(backend=ctx.compile_backend, dynamic=False)
            return _train_step(ctx, model, in_channels, channels, False, info, mode, decoder_loss=decoder_loss,
                               cuda_graph=cuda_graph)
        if (decoder_loss or cuda_graph) and compiled:
            raise ValueError("decoder_loss and cuda_graph need the model uncompiled or compiled per block")
        return _train_step(ctx, model, in_channels, channels, compiled, info, mode, memory_budget,
                           decoder_loss=decoder_loss, cuda_graph=cuda_graph)

    return setup


def _pyg_step(compiled: bool):
    def setup(ctx: Context, graph: str) -> Prepared:
        ctx.require_pyg()
        in_channels, layers, channels = step_config()
        model = baselines.pyg_graphcast_model(ctx.graphs, in_channels, len(channels), ctx.latent, layers)
        info = {"layers": layers, "processor": "interaction (PyG)",
                "checkpoint": "encoder block, each processor layer, decoder block"}
        return _train_step(ctx, model, in_channels, channels, compiled, info)

    return setup


def _flag_off(module: str, flag: str, info: dict) -> Callable[[Callable[[Context, str], Prepared]],
                                                              Callable[[Context, str], Prepared]]:
    """Wrap a ``setup`` so that it, and each call of its step, runs with the module-level switch
    ``<module>.<flag>`` off (restored after each), for a same-run comparison; ``info`` joins the record's.
    Set-up is covered too: a CUDA graph is captured there."""

    def off(fn):
        mod = importlib.import_module(module)
        setattr(mod, flag, False)
        try:
            return fn()
        finally:
            setattr(mod, flag, True)

    def wrap(setup: Callable[[Context, str], Prepared]) -> Callable[[Context, str], Prepared]:
        def wrapped(ctx: Context, graph: str) -> Prepared:
            prepared = off(lambda: setup(ctx, graph))
            inner = prepared.step
            prepared.step = lambda: off(inner)
            prepared.info.update(info)
            return prepared

        return wrapped

    return wrap


#: ``setup`` with ``edge_linear.GLUON`` off: the edge MLP's products on the Triton kernels instead of the
#: Gluon ones (``edge_linear_gluon``).
_without_gluon = _flag_off("weathergnn.ops.triton.edge_linear", "GLUON", {"gluon_kernels": False})

#: ``setup`` with ``interaction_edge.ONE_NODE`` off: each interaction layer's projections and node MLP as
#: modules around the edge update's autograd node, instead of the layer as one node
#: (:class:`weathergnn.ops.interaction_edge.InteractionUpdate`).
_split_node = _flag_off("weathergnn.ops.interaction_edge", "ONE_NODE",
                        {"interaction_layer": "split: edge update one autograd node, node MLP modules"})

#: ``setup`` with ``edge_linear_gluon.WEIGHT_IN_PLACE`` off: each Gluon product copies its weight to a
#: contiguous ``[K, N]`` first, instead of reading the ``nn.Linear`` weight (or its slice) in place.
_weight_copies = _flag_off("weathergnn.ops.triton.edge_linear_gluon", "WEIGHT_IN_PLACE",
                           {"gluon_weights": "copied to a contiguous [K, N] per product"})


def _capture(prepared: Prepared, device: torch.device, what: str) -> Prepared:
    """``prepared`` with its step (after its reset: the captured backward must write the gradients,
    not add to an earlier replay's) captured as one CUDA graph here, untimed
    (:class:`weathergnn.training.cuda_graph.CapturedStep`: 2 eager warm-up calls, then the capture);
    each timed call is one replay, and the reset is a no-op. ``what`` names the captured work in
    ``info["cuda_graph"]``."""
    from weathergnn.training.cuda_graph import CapturedStep

    inner, clear = prepared.step, prepared.reset

    def fresh_step() -> None:
        clear()
        inner()

    captured = CapturedStep(fresh_step, device, warmup=2)
    t0 = time.perf_counter()
    while not captured.captured:
        captured()
    torch.cuda.synchronize(device)
    prepared.info.update(cuda_graph=f"{what} (CapturedStep: 2 eager warm-up calls, then one capture)",
                         graph_warmup_and_capture_s=round(time.perf_counter() - t0, 2),
                         graph_capture_s=round(captured.capture_s, 2),
                         graph_pool_GiB=round(captured.pool_bytes / 2**30, 2))
    prepared.step, prepared.reset = captured, (lambda: None)  # each replay writes the gradients anew
    return prepared


def _cuda_graphed(setup: Callable[[Context, str], Prepared]) -> Callable[[Context, str], Prepared]:
    """``setup`` whose step (gradients reset, forward, backward) is captured as one CUDA graph
    (:func:`_capture`). This is how a layer runs inside the configured training step
    (``training.cuda_graph``), without the host's launch time; the same wrapper serves ours and PyG.

    Raises:
        CaseSkipped: not on a CUDA device.
    """

    def wrapped(ctx: Context, graph: str) -> Prepared:
        if ctx.device.type != "cuda":
            raise CaseSkipped(f"CUDA graphs need a CUDA device, not {ctx.device}")
        return _capture(setup(ctx, graph), ctx.device, "forward + backward")

    return wrapped


def _impls(*items: Impl) -> dict[str, Impl]:
    return {i.name: i for i in items}


#: case -> {impl name: Impl}; the ``step`` case runs on graph ``"all"``.
CASE_IMPLS: dict[str, dict[str, Impl]] = {
    "sum": _impls(
        Impl("ours-torch", _ours_sum("torch")),
        Impl("ours-triton", _ours_sum("triton")),
        Impl("torch-index_add", _index_add(False)),
        Impl("torch-index_add-compiled", _index_add(True)),
        Impl("torch-segment_reduce", _segment_reduce),
        Impl("pyg-scatter", _pyg_scatter(False)),
        Impl("pyg-scatter-compiled", _pyg_scatter(True)),
        Impl("pyg-mp", _pyg_mp(False)),
        Impl("pyg-mp-compiled", _pyg_mp(True), default=False),  # compiles to the same as pyg-scatter-compiled
        Impl("cusparse-csr-fp32", _cusparse),
        # A^T built once: the backward is a second SpMM, no transpose (and no synchronisation) per call
        Impl("cusparse-csr-fp32-pretransposed", _cusparse_pretransposed),
    ),
    "interaction": _impls(
        Impl("ours-torch", _ours_interaction("torch", False)),
        Impl("ours-torch-compiled", _ours_interaction("torch", True)),
        Impl("ours-triton", _ours_interaction("triton", False)),
        Impl("ours-triton-compiled", _ours_interaction("triton", True)),
        # the edge MLP's GEMMs in Triton with fused epilogues (ops/triton/edge_linear.py): leaner, slower
        Impl("ours-triton-fusedgemm", _ours_interaction("triton", False, edge_gemm="triton")),
        Impl("ours-triton-fusedgemm-compiled", _ours_interaction("triton", True, edge_gemm="triton")),
        # the node MLP's second layer as cuBLAS after a SiLU pass (before the SiLU-on-load MLPs)
        Impl("ours-triton-fusedgemm-compiled-cublasmlp",
             _ours_interaction("triton", True, edge_gemm="triton", silu_gemm="cublas"), default=False),
        # the edge MLP's products on the Triton TMA kernel instead of the Gluon one (edge_linear_gluon)
        Impl("ours-triton-fusedgemm-nogluon-compiled",
             _without_gluon(_ours_interaction("triton", True, edge_gemm="triton")), default=False),
        Impl("pyg", _pyg_interaction(False)),
        Impl("pyg-compiled", _pyg_interaction(True)),
        # forward + backward replayed as one CUDA graph, as the layers run in the configured step
        Impl("ours-triton-fusedgemm-cudagraph-compiled",
             _cuda_graphed(_ours_interaction("triton", True, edge_gemm="triton"))),
        Impl("pyg-cudagraph-compiled", _cuda_graphed(_pyg_interaction(True))),
        # the layer before InteractionUpdate: projections and node MLP as modules (sums in add passes)
        Impl("ours-triton-fusedgemm-cudagraph-compiled-splitnode",
             _split_node(_cuda_graphed(_ours_interaction("triton", True, edge_gemm="triton"))), default=False),
        # the Gluon products' weights copied to a contiguous [K, N] each call (before they were read in place)
        Impl("ours-triton-fusedgemm-cudagraph-compiled-wcopy",
             _weight_copies(_cuda_graphed(_ours_interaction("triton", True, edge_gemm="triton"))), default=False),
    ),
    "fused": _impls(
        Impl("ours-torch", _ours_fused("torch", False)),
        Impl("ours-torch-compiled", _ours_fused("torch", True)),
        Impl("ours-triton", _ours_fused("triton", False)),
        Impl("ours-triton-compiled", _ours_fused("triton", True)),
    ),
    "step": _impls(
        Impl("ours-torch", _ours_step("interaction", "torch", 8)),
        Impl("ours-torch-decoderloss", _ours_step("interaction", "torch", 8, decoder_loss=True), default=False),
        Impl("ours-triton", _ours_step("interaction", "triton")),
        Impl("ours-triton-chunked", _ours_step("interaction", "triton", 8)),
        Impl("ours-triton-compiled", _ours_step("interaction", "triton", 1, compiled=True)),
        Impl("ours-triton-chunked-compiled", _ours_step("interaction", "triton", 8, compiled=True)),
        # each block compiled on its own: checkpointing and chunking stay eager and keep their memory savings
        Impl("ours-triton-chunked-blocks-compiled", _ours_step("interaction", "triton", 8, compiled=True, blocks=True)),
        # ... and the processor layers not recomputed (only the grid-side blocks are)
        Impl("ours-triton-chunked-mapperckpt-blocks-compiled",
             _ours_step("interaction", "triton", 8, compiled=True, blocks=True, checkpoint_processor=False),
             default=False),
        # fewer encoder chunks: each one returns a gradient for the whole grid sender projection
        Impl("ours-triton-chunked-2-8-blocks-compiled",
             _ours_step("interaction", "triton", (2, 8), compiled=True, blocks=True), default=False),
        Impl("ours-triton-blocks-compiled", _ours_step("interaction", "triton", 1, compiled=True, blocks=True),
             default=False),
        # the edge MLP's GEMMs in Triton with fused epilogues (ops/triton/edge_linear.py): leaner, slower
        Impl("ours-triton-compiled-fusedgemm", _ours_step("interaction", "triton", 1, compiled=True, edge_gemm="triton"),
             default=False),
        Impl("ours-triton-chunked-blocks-compiled-fusedgemm",
             _ours_step("interaction", "triton", 8, compiled=True, blocks=True, edge_gemm="triton"), default=False),
        # (encoder, decoder) chunk counts: fewer encoder chunks, fewer full-size sender-projection gradients
        *(Impl(f"ours-triton-chunked-{enc}-{dec}-blocks-compiled-fusedgemm",
               _ours_step("interaction", "triton", (enc, dec), compiled=True, blocks=True, edge_gemm="triton"),
               default=False)
          for enc, dec in ((1, 8), (2, 8), (1, 4), (2, 4), (1, 3), (1, 2))),
        # only the first n processor layers recomputed: the others keep their activations (0.8 GiB each);
        # GRAPHCAST_STEP is the era5-0.25deg-graphcast configuration (with edge_gemm: auto on the H200)
        *(Impl(f"ours-triton-chunked-{enc}-{dec}-ckpt{n}-blocks-compiled-fusedgemm",
               _ours_step("interaction", "triton", (enc, dec), compiled=True, blocks=True, edge_gemm="triton",
                          checkpoint_processor=n), default=(enc, dec, n) == GRAPHCAST_STEP)
          for enc, dec, n in ((1, 4, 12), (1, 4, 10), (1, 4, 8), (2, 8, 10), (2, 8, 8), (2, 8, 6), (2, 8, 5), (2, 8, 4),
                              (2, 8, 3), (2, 8, 2))),
        # each decoder chunk run once, its loss back-propagated right after it (no decoder recomputation), with
        # (encoder, decoder) chunks and n of 16 processor layers recomputed; GRAPHCAST_STEP is the configuration's
        *(Impl(f"ours-triton-chunked-{enc}-{dec}-ckpt{n}-blocks-compiled-fusedgemm-decoderloss",
               _ours_step("interaction", "triton", (enc, dec), compiled=True, blocks=True, edge_gemm="triton",
                          checkpoint_processor=n, decoder_loss=True), default=(enc, dec, n) == GRAPHCAST_STEP)
          for enc, dec, n in ((2, 8, 6), (2, 8, 4), (2, 8, 3), (2, 8, 2), (2, 16, 6), (2, 16, 4), (2, 16, 2), (2, 16, 0),
                              (1, 16, 4), (2, 4, 6), (2, 6, 6), (1, 8, 6),
                              # 0.1 deg / refinement 7 (--grid-deg 0.1 --refinement 7): every processor layer
                              # recomputed, or only some (3-4 GiB of activations kept per layer there)
                              (4, 32, 16), (8, 32, 16), (8, 64, 16), (4, 32, 8), (4, 32, 4), (4, 32, 0))),
        # the step captured as one CUDA graph (training.cuda_graph: true): one launch per step, so the GPU's
        # time alone; with (encoder, decoder) chunks and n of 16 processor layers recomputed
        *(Impl(f"ours-triton-chunked-{enc}-{dec}-ckpt{n}-blocks-compiled-fusedgemm-decoderloss-cudagraph",
               _ours_step("interaction", "triton", (enc, dec), compiled=True, blocks=True, edge_gemm="triton",
                          checkpoint_processor=n, decoder_loss=True, cuda_graph=True), default=(enc, dec, n) == GRAPHCAST_STEP)
          for enc, dec, n in ((2, 8, 6), (2, 8, 5), (2, 8, 4), (2, 8, 3), (2, 8, 2), (2, 6, 4), (2, 6, 3), (2, 12, 6),
                              (2, 12, 4), (2, 16, 6), (2, 16, 4), (2, 24, 4), (2, 16, 0))),
        # ... with each interaction layer split: projections and node MLP as modules (before InteractionUpdate)
        *(Impl(f"ours-triton-chunked-2-8-ckpt{n}-blocks-compiled-fusedgemm-decoderloss-cudagraph-splitnode",
               _split_node(_ours_step("interaction", "triton", (2, 8), compiled=True, blocks=True, edge_gemm="triton",
                                      checkpoint_processor=n, decoder_loss=True, cuda_graph=True)),
               default=False) for n in (3, 2)),
        # ... with the Gluon products' weights copied to a contiguous [K, N] each call (before they were read in place)
        Impl("ours-triton-chunked-{}-{}-ckpt{}-blocks-compiled-fusedgemm-decoderloss-cudagraph-wcopy".format(
            *GRAPHCAST_STEP), _weight_copies(_ours_step(
                "interaction", "triton", GRAPHCAST_STEP[:2], compiled=True, blocks=True, edge_gemm="triton",
                checkpoint_processor=GRAPHCAST_STEP[2], decoder_loss=True, cuda_graph=True)), default=False),
        # ... with every MLP's second layer as cuBLAS after a SiLU pass (before the SiLU-on-load MLPs)
        *(Impl(f"ours-triton-chunked-2-8-ckpt{n}-blocks-compiled-fusedgemm-decoderloss-cudagraph-cublasmlp",
               _ours_step("interaction", "triton", (2, 8), compiled=True, blocks=True, edge_gemm="triton",
                          checkpoint_processor=n, decoder_loss=True, cuda_graph=True, silu_gemm="cublas"),
               default=False) for n in (6, 4, 3)),
        Impl("ours-triton-chunked-2-8-ckpt6-blocks-compiled-fusedgemm-decoderloss-nogluon",
             _without_gluon(_ours_step("interaction", "triton", (2, 8), compiled=True, blocks=True, edge_gemm="triton",
                                       checkpoint_processor=6, decoder_loss=True)), default=False),
        # the embedders' first layers as cuBLAS + a SiLU pass instead of ops/triton/narrow_linear_silu.py
        Impl("ours-triton-chunked-2-8-ckpt6-blocks-compiled-fusedgemm-decoderloss-nonarrow",
             _ours_step("interaction", "triton", (2, 8), compiled=True, blocks=True, edge_gemm="triton",
                        checkpoint_processor=6, decoder_loss=True, narrow=False), default=False),
        # the MLPs' second-layer bias in the cuBLAS product, its gradient a reduction pass of its own
        Impl("ours-triton-chunked-2-8-ckpt6-blocks-compiled-fusedgemm-decoderloss-nolnbias",
             _ours_step("interaction", "triton", (2, 8), compiled=True, blocks=True, edge_gemm="triton",
                        checkpoint_processor=6, decoder_loss=True, bias_in_norm=False), default=False),
        # the configuration with cuBLAS edge GEMMs everywhere, or in the (chunked) encoder and decoder only
        Impl("ours-triton-chunked-2-8-ckpt6-blocks-compiled-cublasgemm",
             _ours_step("interaction", "triton", (2, 8), compiled=True, blocks=True, edge_gemm="cublas",
                        checkpoint_processor=6), default=False),
        Impl("ours-triton-chunked-2-8-ckpt6-blocks-compiled-fusedgemm-mappercublas",
             _ours_step("interaction", "triton", (2, 8), compiled=True, blocks=True, edge_gemm="triton",
                        checkpoint_processor=6, mapper_edge_gemm="cublas"), default=False),
        # the configuration without the zero-padded embedder / output-head products (before a36a6e2)
        Impl("ours-triton-chunked-2-8-ckpt6-align1-blocks-compiled-fusedgemm",
             _ours_step("interaction", "triton", (2, 8), compiled=True, blocks=True, edge_gemm="triton",
                        checkpoint_processor=6, align=1), default=False),
        # whole-model compile, no checkpointing: the partitioner keeps this fraction of the activations
        *(Impl(f"ours-triton-budget{b}-compiled", _ours_step("interaction", "triton", 1, compiled=True,
                                                            memory_budget=b), default=False)
          for b in (0.1, 0.2, 0.3, 0.5)),
        # torch.compile(mode="reduce-overhead"): CUDA graphs remove the launch gaps of the small processor layers
        Impl("ours-triton-cudagraphs-compiled",
             _ours_step("interaction", "triton", 1, compiled=True, mode="reduce-overhead"), default=False),
        Impl("ours-triton-chunked-cudagraphs-compiled",
             _ours_step("interaction", "triton", 8, compiled=True, mode="reduce-overhead"), default=False),
        Impl("ours-fused-torch", _ours_step("fused", "torch", 8), default=False),
        Impl("ours-fused-triton", _ours_step("fused", "triton", 8)),
        Impl("pyg", _pyg_step(False)),
        Impl("pyg-compiled", _pyg_step(True)),
    ),
}
