"""Encoder-processor-decoder GNN on grid and multimesh (GraphCast architecture).

Source: Lam et al. 2023, GraphCast supplement sec. 3 (encoder 3.3, processor
3.4, decoder 3.5); Battaglia et al. 2018 (interaction networks).

Data flow (``B`` batch, ``G`` grid nodes, ``M`` mesh nodes, ``L`` latent)::

    embed   h_g = MLP([x, grid_features])                     [B, G, L]
            h_m = MLP(mesh_features)                          [M, L]  (static)
            e_s = MLP(edge_features_s)   for each edge set s  [E_s, L] (static)
    encode  (h_m, _) = Interaction_g2m(h_g -> h_m, e_g2m)     [B, M, L]
            h_g = h_g + MLP(h_g)                              [B, G, L]
    process h_m = Processor(h_m, e_mesh)                      [B, M, L]
    decode  (h_g, _) = Interaction_m2g(h_m -> h_g, e_m2g)     [B, G, L]
            y = MLP_out(h_g)  (no LayerNorm)                  [B, G, C_out]

With ``processor="fused"`` only the processor changes: the encoder and decoder
stay edge-conditioned interaction networks (the grid2mesh and mesh2grid edges
carry the geometry the mappings need; a barycentric fused mesh2grid would drop
it), and no mesh edge embedder is built (the fused layers read the static mesh
edge features and weights themselves).
"""

from __future__ import annotations

import torch
from torch import nn

from weathergnn.graphs.types import EdgeSet, WeatherGraphs
from weathergnn.models.mlp import MLP
from weathergnn.models.processors import EdgeBuffers, InteractionLayer, Processor
from weathergnn.models.recompute import recompute
from weathergnn.ops import dispatch

# Default width multiple of the embedders' inputs and the output head's output (MLP's ``align``).
ALIGN = 8


class EncodeProcessDecode(nn.Module):
    """GraphCast-style GNN mapping grid inputs to grid outputs through the mesh.

    Args:
        graphs: the grid, mesh and the three edge sets. Its tensors are copied
            into non-persistent buffers (moved by ``.to(device)``, not saved in
            ``state_dict``: rebuild the model from the cached graph).
        in_channels: input features per grid node (without the 3 grid features).
        out_channels: output features per grid node.
        latent: latent width of all nodes and edges (MLP hidden = latent).
        layers: processor layers.
        processor: ``"interaction"`` or ``"fused"``.
        checkpoint: activation checkpointing of the grid embedding, the
            encoder, each processor layer and the decoder (see :meth:`forward`).
        backend: ops backend (``"auto"``, ``"torch"``, ``"triton"``), resolved
            here so an unavailable backend fails at construction.
        edge_gemm: GEMMs of the interaction edge MLPs (``"auto"``, ``"cublas"``,
            ``"triton"``; :func:`weathergnn.ops.interaction_edge.interaction_edge_update`),
            and of every MLP's second layer with its SiLU (``MLP.silu_gemm``).
        mapper_chunks: split the encoder and decoder edge sets into this many
            chunks of consecutive receivers (bounds peak memory at high
            resolution; same result); one number for both, or
            ``(encoder, decoder)``. Each encoder chunk returns a gradient for
            the whole grid sender projection ``[B, G, H]``, so fewer encoder
            than decoder chunks pay: at 0.25 deg on the H200, ``(1, 4)`` ran
            the GraphCast-size step in 273 ms at 19.7 GiB, ``(8, 8)`` in 293
            ms at 16.5 GiB (``benchmarks/results/benchmark_nvidia-h200_2026-11-21_8dcc6af_step-chunks.md``).
        checkpoint_processor: checkpoint the processor layers: ``None``
            follows ``checkpoint``; ``True`` / ``False`` all or none; an
            integer ``n`` the first ``n`` layers (:class:`Processor`).
            ``checkpoint=True, checkpoint_processor=False`` recomputes only the
            grid-side blocks (embedding, mappers), whose ``[edges, latent]``
            tensors dominate memory at 0.25 deg, and keeps the processor's
            activations (no recompute of its 16 layers, 0.8 GiB each at
            refinement 6 and latent 512); an integer trades the two.
        align: the embedders' input widths (grid: ``in_channels + 3``; mesh
            and edge features) and the output head's ``out_channels`` are
            zero-padded to multiples of this in their products (:class:`MLP`;
            same result, 16-byte rows for cuBLAS's Hopper kernels); 1 turns it off.

    Raises:
        ValueError: ``mapper_chunks < 1``; an integer ``checkpoint_processor``
            outside ``0 .. layers``; ``align < 1``.
    """

    def __init__(
        self,
        graphs: WeatherGraphs,
        in_channels: int,
        out_channels: int,
        latent: int = 64,
        layers: int = 4,
        processor: str = "interaction",
        checkpoint: bool = False,
        backend: str = "auto",
        mapper_chunks: int | tuple[int, int] = 1,
        checkpoint_processor: bool | int | None = None,
        edge_gemm: str = "auto",
        align: int | None = None,
    ):
        super().__init__()
        dispatch.resolve_backend(backend)
        dispatch.check_edge_gemm(edge_gemm)
        enc_chunks, dec_chunks = (mapper_chunks, mapper_chunks) if isinstance(mapper_chunks, int) else mapper_chunks
        if enc_chunks < 1 or dec_chunks < 1:
            raise ValueError(f"mapper_chunks must be >= 1, got {mapper_chunks}")
        align = ALIGN if align is None else align
        if align < 1:
            raise ValueError(f"align must be >= 1, got {align}")
        self.checkpoint = checkpoint
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.num_grid_nodes = graphs.num_grid_nodes
        self.num_mesh_nodes = graphs.num_mesh_nodes
        self.register_buffer("grid_features", graphs.grid_features.clone(), persistent=False)
        self.register_buffer("mesh_features", graphs.mesh_features.clone(), persistent=False)
        # The mapper edge sets, split into chunks of consecutive receivers
        # (one chunk = the whole set when mapper_chunks == 1).
        self.g2m_chunks = nn.ModuleList(EdgeBuffers(c) for c in split_by_destination(graphs.grid2mesh, enc_chunks))
        self.m2g_chunks = nn.ModuleList(EdgeBuffers(c) for c in split_by_destination(graphs.mesh2grid, dec_chunks))
        n_grid_f = graphs.grid_features.shape[-1]
        n_mesh_f = graphs.mesh_features.shape[-1]
        n_edge_f = graphs.grid2mesh.features.shape[-1]

        # Embedders.
        # align=8: 16-byte rows for cuBLAS's Hopper kernels (188 inputs / 84 outputs at 0.25 deg; see MLP).
        self.grid_embed = MLP(in_channels + n_grid_f, latent, latent, backend=backend, align=align)
        self.mesh_embed = MLP(n_mesh_f, latent, latent, backend=backend, align=align)
        self.g2m_edge_embed = MLP(n_edge_f, latent, latent, backend=backend, align=align)
        self.m2g_edge_embed = MLP(n_edge_f, latent, latent, backend=backend, align=align)
        self.mesh_edge_embed = (
            MLP(graphs.mesh.features.shape[-1], latent, latent, backend=backend, align=align)
            if processor == "interaction" else None
        )
        # Encoder, processor, decoder.
        self.encoder = InteractionLayer(latent, backend=backend, edge_gemm=edge_gemm)
        self.grid_update = MLP(latent, latent, latent, backend=backend)
        self.processor = Processor(
            processor, latent, layers, graphs.mesh,
            checkpoint=checkpoint if checkpoint_processor is None else checkpoint_processor, backend=backend,
            edge_gemm=edge_gemm,
        )
        self.decoder = InteractionLayer(latent, backend=backend, edge_gemm=edge_gemm)
        self.output = MLP(latent, latent, out_channels, layer_norm=False, backend=backend, align=align)
        for module in self.modules():  # every MLP's second layer takes its SiLU on load under the same setting
            if isinstance(module, MLP):
                module.silu_gemm = edge_gemm

    def compile_blocks(self, **compile_kwargs) -> "EncodeProcessDecode":
        """``torch.compile`` each block in place (regional compilation); returns ``self``.

        Compiled: the embedders, the encoder, the grid update, every processor
        layer, the decoder and the output head, each on its own
        (``nn.Module.compile``; identical processor layers share one compiled
        graph). Activation checkpointing and mapper chunking stay in eager
        Python around them, so they keep their memory savings: compiling the
        whole model instead lets the compiler's partitioner keep activations
        that checkpointing would drop (measured on the H200:
        ``benchmarks/results/``). ``compile_kwargs`` go to ``torch.compile``.

        Every MLP shape and every mapper chunk size is one more compiled
        variant of the same code, so dynamo's per-code recompile limit is
        raised (to at least 8 per chunk plus 32) instead of silently falling
        back to eager past its default of 8.
        """
        import torch._dynamo.config as dynamo_config

        needed = 8 * max(len(self.g2m_chunks), len(self.m2g_chunks)) + 32
        dynamo_config.recompile_limit = max(dynamo_config.recompile_limit, needed)
        blocks = [self.grid_embed, self.mesh_embed, self.g2m_edge_embed, self.m2g_edge_embed, self.mesh_edge_embed,
                  self.encoder, self.grid_update, *self.processor.layers, self.decoder, self.output]
        for block in blocks:
            if block is not None:
                block.compile(**compile_kwargs)
        return self

    @property
    def g2m(self) -> EdgeBuffers:
        """The grid2mesh edges (first chunk; the whole set when unchunked)."""
        return self.g2m_chunks[0]

    @property
    def m2g(self) -> EdgeBuffers:
        """The mesh2grid edges (first chunk; the whole set when unchunked)."""
        return self.m2g_chunks[0]

    def _embed_grid(self, x: torch.Tensor) -> torch.Tensor:
        # One concatenation builds the embedder's input in the dtype its product runs in (bf16 under
        # autocast: half the bytes of a float32 copy that autocast would then cast), zero-padded to
        # the embedder's aligned width.
        dtype = dispatch.compute_dtype(x)
        b, g, c = x.shape
        n_in = self.grid_embed.lin1.in_features
        inp = x.new_empty(b, g, n_in + self.grid_embed.in_pad, dtype=dtype)  # [B, G, C_in + 3 + pad]
        inp[..., :c] = x  # strided copies: torch.cat along a narrow last dim ran at ~1 TB/s on the H200
        inp[..., c:n_in] = self.grid_features.to(dtype)
        inp[..., n_in:] = 0
        return self.grid_embed(inp)  # [B, G, L]

    def _encode_chunk(self, p_grid: torch.Tensor, h_mesh: torch.Tensor, k: int) -> torch.Tensor:
        """Encoder on the k-th chunk of mesh receivers: h_mesh [B, M_k, L] -> [B, M_k, L].

        ``p_grid`` [B, G, H] is the encoder's sender projection of the grid
        latents, computed once for all chunks.
        """
        edges = self.g2m_chunks[k]
        e = self.g2m_edge_embed(edges.features)  # [E_k, L], static
        return self.encoder(None, h_mesh, e, edges, p_src=p_grid, return_edges=False)[0]

    def _update_grid(self, h_grid: torch.Tensor) -> torch.Tensor:
        return self.grid_update(h_grid, residual=h_grid)  # h_grid + MLP(h_grid): [B, G, L]

    def _decode_chunk(self, p_mesh: torch.Tensor, h_grid: torch.Tensor, k: int) -> torch.Tensor:
        """Decoder and output head on the k-th chunk of grid receivers: [B, G_k, L] -> [B, G_k, C_out].

        ``p_mesh`` [B, M, H] is the decoder's sender projection of the mesh
        latents, computed once for all chunks.
        """
        edges = self.m2g_chunks[k]
        e = self.m2g_edge_embed(edges.features)  # [E_k, L], static
        h_grid, _ = self.decoder(None, h_grid, e, edges, p_src=p_mesh, return_edges=False)  # [B, G_k, L]
        return self.output(h_grid)

    def _run(self, fn, *args):
        """``fn(*args)``, recomputed in backward when checkpointing is on and grad is enabled."""
        if self.checkpoint and torch.is_grad_enabled():
            return recompute(fn, *args)
        return fn(*args)

    def _trunk(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Everything before the decoder: x [B, G, C_in] -> (p_mesh [B, M, H], h_grid [B, G, L]).

        ``p_mesh`` is the decoder's sender projection of the processed mesh
        latents (computed once for all decoder chunks); ``h_grid`` the grid
        latents after the encoder's grid update.
        """
        b = x.shape[0]
        h_grid = self._run(self._embed_grid, x)  # [B, G, L]
        h_mesh = self.mesh_embed(self.mesh_features).expand(b, -1, -1)  # [B, M, L]

        # Encoder: grid -> mesh interaction (per chunk of mesh receivers), grid nodes updated by an MLP.
        # The senders are projected once (W_s h_grid, [B, G, H]), not once per chunk.
        p_grid = self.encoder.edge_mlp.lin_src(h_grid)
        h_mesh = torch.cat(
            [self._run(self._encode_chunk, p_grid, h_k, k)
             for k, h_k in enumerate(_split_receivers(h_mesh, self.g2m_chunks))],
            dim=1,
        )  # [B, M, L]
        h_grid = self._run(self._update_grid, h_grid)  # [B, G, L]

        # Processor on the multimesh.
        e_mesh = None
        if self.mesh_edge_embed is not None:
            e_mesh = self.mesh_edge_embed(self.processor.edges.features)  # [E_mesh, L], static
        h_mesh = self.processor(h_mesh, e_mesh)  # [B, M, L]
        return self.decoder.edge_mlp.lin_src(h_mesh), h_grid  # [B, M, H], [B, G, L]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args:
            x: [batch, num_grid_nodes, in_channels].

        Returns:
            [batch, num_grid_nodes, out_channels].

        With ``checkpoint=True`` the grid embedding, each encoder chunk, the
        grid update, each processor layer and each decoder chunk are recomputed
        in backward (only their inputs are kept), as in GraphCast-scale
        training. With ``mapper_chunks > 1`` the encoder and decoder run
        over chunks of consecutive receivers (each chunk's edges are the
        contiguous CSC range of its receivers), so only one chunk's
        ``[edges, latent]`` tensors are alive at a time (the "mapper chunking"
        of Anemoi); the result is the same as unchunked. For training,
        :meth:`forward_backward` runs the decoder chunks once instead of twice.
        """
        p_mesh, h_grid = self._trunk(x)
        return torch.cat(
            [self._run(self._decode_chunk, p_mesh, h_k, k)
             for k, h_k in enumerate(_split_receivers(h_grid, self.m2g_chunks))],
            dim=1,
        )  # [B, G, C_out]

    def decoder_chunk_bounds(self) -> list[tuple[int, int]]:
        """The grid-node ranges ``[(lo, hi), ...]`` of the decoder chunks, in order."""
        bounds, lo = [], 0
        for chunk in self.m2g_chunks:
            bounds.append((lo, lo + int(chunk.num_dst)))
            lo += int(chunk.num_dst)
        return bounds

    def forward_backward(self, x: torch.Tensor, chunk_loss, extra_roots=None) -> torch.Tensor:
        """Forward, loss and backward, with each decoder chunk run once: its loss's backward right after it.

        For a loss that is a sum over grid nodes (GraphCast's latitude-weighted
        MSE is), the decoder's chunks need not be kept or recomputed: the
        model runs up to the decoder with the autograd graph kept, then, per
        chunk of grid receivers, runs the decoder and output head on it,
        evaluates ``chunk_loss`` on its output and back-propagates that right
        away into the chunk's inputs (the mesh sender projection and the grid
        latents, cut from the graph there) and the decoder's parameters. Last,
        one backward carries the inputs' gradients (plus ``extra_roots``)
        through the rest of the model. The gradients are those of
        ``forward`` + the summed loss + ``backward`` (to summation order),
        without ``forward``'s recomputation of the decoder chunks when
        ``checkpoint=True``: only one chunk's activations are alive at a time
        either way. This is the chunked-loss idea of memory-efficient LM heads
        (e.g. Liger's fused linear cross-entropy) applied to the decoder.

        Args:
            x: [batch, num_grid_nodes, in_channels].
            chunk_loss: ``chunk_loss(y_k, lo, hi) -> 0-dim tensor``, the loss
                of the output ``y_k`` [batch, hi - lo, out_channels] of grid
                nodes ``lo .. hi - 1``. The total loss is the sum over the
                chunks of :meth:`decoder_chunk_bounds`. It runs with autocast
                off (``y_k`` has the decoder's dtype, bf16 under autocast).
            extra_roots: None, or a callable called after the chunks' backward
                that returns ``[(tensor, grad), ...]`` to back-propagate in the
                same final backward as the trunk (``grad`` None for a 0-dim
                loss): e.g. earlier rollout steps' loss, or the gradient a
                caller collected for a tensor that ``chunk_loss`` cut.

        Returns:
            The sum of the chunks' losses (0-dim float32, detached).

        Raises:
            RuntimeError: gradient computation is disabled.
            ValueError: ``chunk_loss`` returned a tensor that is not 0-dim.
        """
        if not torch.is_grad_enabled():
            raise RuntimeError("forward_backward needs gradients enabled (it runs backward)")
        dev = x.device.type
        amp, amp_dtype = torch.is_autocast_enabled(dev), torch.get_autocast_dtype(dev)
        p_mesh, h_grid = self._trunk(x)  # [B, M, H], [B, G, L]
        p_cut = p_mesh.detach().requires_grad_(p_mesh.requires_grad)  # one leaf: its .grad sums the chunks'
        h_cut = ChunkCut(h_grid)
        total = torch.zeros((), device=x.device, dtype=torch.float32)
        with torch.autocast(dev, enabled=False):
            for k, (lo, hi) in enumerate(self.decoder_chunk_bounds()):
                with torch.autocast(dev, dtype=amp_dtype, enabled=amp):
                    y_k = self._decode_chunk(p_cut, h_cut.take(lo, hi), k)  # [B, G_k, C_out]
                loss_k = chunk_loss(y_k, lo, hi)
                if not (torch.is_tensor(loss_k) and loss_k.dim() == 0):
                    raise ValueError(f"chunk_loss must return a 0-dim tensor, got {getattr(loss_k, 'shape', loss_k)!r}"
                                     f" for grid nodes {lo}..{hi - 1}")
                loss_k.backward()
                total += loss_k.detach().float()
                h_cut.collect()
                del y_k, loss_k
            roots, grads = [], []
            for t, g in ((p_mesh, p_cut.grad), (h_grid, h_cut.grad)):
                if t.requires_grad and g is not None:
                    roots.append(t)
                    grads.append(g)
            for t, g in (extra_roots() if extra_roots is not None else ()):
                roots.append(t)
                grads.append(g)
            if roots:
                torch.autograd.backward(roots, grads)
        return total


class ChunkCut:
    """Per-chunk leaves cut from a ``[B, N, ...]`` tensor, and their gradients gathered back into one tensor.

    For a backward run chunk by chunk (:meth:`EncodeProcessDecode.forward_backward`):
    :meth:`take` gives rows ``lo .. hi - 1`` along dim 1 as a leaf with no
    autograd link to ``t`` (requiring grad where ``t`` does); after the
    chunks' backward, :meth:`collect` writes the leaves' gradients into
    :attr:`grad` (``[B, N, ...]``, zero where no leaf got one; None when ``t``
    needs no gradient), which the caller then back-propagates into ``t``.
    """

    def __init__(self, t: torch.Tensor):
        self._src = t.detach()
        self._needs_grad = t.requires_grad
        self.grad = torch.zeros_like(t) if t.requires_grad else None
        self._open: list[tuple[int, int, torch.Tensor]] = []

    def take(self, lo: int, hi: int) -> torch.Tensor:
        leaf = self._src[:, lo:hi].detach().requires_grad_(self._needs_grad)
        if self._needs_grad:
            self._open.append((lo, hi, leaf))
        return leaf

    def collect(self) -> None:
        for lo, hi, leaf in self._open:
            if leaf.grad is not None:
                self.grad[:, lo:hi] = leaf.grad
        self._open.clear()


def _split_receivers(h: torch.Tensor, chunks: nn.ModuleList) -> tuple[torch.Tensor, ...]:
    """``h`` [B, N, L] split into the chunks' receiver ranges (views along N).

    One ``torch.split`` rather than a slice per chunk: its backward
    concatenates the chunks' gradients once, where per-chunk slices would each
    allocate a zero-filled full-size gradient and add it to the others (at
    0.25 deg with 8 decoder chunks, 8 fills and 7 adds of a [1, G, L] tensor).
    """
    return torch.split(h, [chunk.num_dst for chunk in chunks], dim=1)


def chunk_bounds(edge_set: EdgeSet, chunks: int) -> list[tuple[int, int]]:
    """Receiver ranges ``[(lo, hi), ...]`` splitting ``edge_set`` into ``chunks`` parts of about equal edge count."""
    ptr = edge_set.dst_ptr
    n = int(edge_set.num_dst)
    chunks = max(1, min(chunks, n))
    targets = torch.linspace(0, int(ptr[-1]), chunks + 1)[1:-1]
    cuts = torch.searchsorted(ptr.to(torch.float64), targets.to(torch.float64)).tolist()
    edges = sorted({0, n, *(min(max(int(c), 0), n) for c in cuts)})
    return list(zip(edges[:-1], edges[1:]))


def split_by_destination(edge_set: EdgeSet, chunks: int) -> list[EdgeSet]:
    """The edges of each receiver range of :func:`chunk_bounds`, receivers renumbered from 0.

    Senders keep their numbering (every chunk reads the whole sender set).
    """
    if chunks <= 1:
        return [edge_set]
    out = []
    for lo, hi in chunk_bounds(edge_set, chunks):
        e_lo, e_hi = int(edge_set.dst_ptr[lo]), int(edge_set.dst_ptr[hi])
        out.append(
            EdgeSet(
                src=edge_set.src[e_lo:e_hi],
                dst=edge_set.dst[e_lo:e_hi] - lo,
                features=edge_set.features[e_lo:e_hi],
                weight=edge_set.weight[e_lo:e_hi],
                dst_ptr=edge_set.dst_ptr[lo : hi + 1] - e_lo,
                num_src=edge_set.num_src,
                num_dst=hi - lo,
            )
        )
    return out
