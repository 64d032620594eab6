"""LayerNorm + residual + segment sum in one pass (``e'`` not written) against the two kernels it replaces (GPU).

On the three edge sets of the 0.25 deg grid and refinement-6 multimesh
(destination-sorted, Hilbert order as the models use them), latent 512, bf16,
batch 1, times (CUDA events, median of ``--repeats`` after warm-up):

* ``two-kernels``: ``layer_norm_residual`` (reads ``y`` and ``e``, writes
  ``e'``) then ``segment_sum`` of ``e'`` (reads it back), the path of an
  edge update whose ``e'`` is returned;
* ``fused``: ``layer_norm_residual_segment_sum`` (reads ``y`` and ``e``,
  writes the row statistics and ``agg``), the path of the last layer on an
  edge set, for each launch configuration ``(BLOCK_S segments, BLOCK_E
  slots, warps)``, the default one marked;

and checks the fused ``agg`` against the two kernels'. Timing is the suite's
(:func:`weathergnn.benchmarking.timing.measure`, an L2 flush before each
sample); the cccff70 results were taken with CUDA events alone, warm L2. GB/s under the fused
kernel's bytes model: ``y`` and ``e`` read once, ``agg`` written once
(``(2 E + Nd) L`` bf16 elements); the two-kernel path moves ``(4 E + Nd) L``.

    python benchmarks/kernel_sweep_ln_segment_sum.py --json OUT.json
"""

from __future__ import annotations

import argparse

import torch
from sweep_file import SweepFile, measure

CONFIGS = [(1, 2, 2), (1, 1, 1), (1, 2, 1), (1, 1, 2), (1, 4, 2), (2, 1, 2), (2, 2, 2), (1, 2, 4), (1, 4, 4),
           (2, 2, 4), (4, 1, 4)]


def time_ms(fn, repeats: int) -> float:
    """Median ms of ``fn`` (the suite's protocol: ``weathergnn.benchmarking.timing.measure``)."""
    return measure(fn, repeats).median_ms


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", required=True)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--deg", type=float, default=0.25)
    ap.add_argument("--refinement", type=int, default=6)
    ap.add_argument("--width", type=int, default=512)
    args = ap.parse_args()
    from weathergnn.benchmarking.cases import grid_axes
    from weathergnn.graphs.build import build_graphs
    from weathergnn.models.processors import EdgeBuffers
    from weathergnn.ops import custom_ops as C
    from weathergnn.ops.triton import layer_norm_segment_sum as mod

    dev = torch.device("cuda")
    graphs = build_graphs(*grid_axes(args.deg), args.refinement)
    w = args.width
    bf = dict(device=dev, dtype=torch.bfloat16)
    out = SweepFile(args.json, dev, width=w, dtype="bfloat16", grid_deg=args.deg, refinement=args.refinement)
    for name in ("mesh", "grid2mesh", "mesh2grid"):
        edges = EdgeBuffers(getattr(graphs, name)).to(dev)
        n_e, n_d = edges.num_edges, edges.num_dst
        y, e = torch.randn(1, n_e, w, **bf), torch.randn(n_e, w, **bf)
        gamma, beta = torch.randn(w, **bf), torch.randn(w, **bf)
        ptrs = (edges.dst_ptr, edges.dst_pieces, edges.dst_groups)
        gbytes = (2 * n_e + n_d) * w * 2 / 1e9

        def two():
            out, _, _ = C.layer_norm_residual(y.view(n_e, w), e, gamma, beta, 1e-5)
            return C.segment_sum(out.view(1, n_e, w), edges.dst_ptr, edges.dst, *ptrs[1:])

        def fused():
            return C.layer_norm_residual_segment_sum(y, e, gamma, beta, 1e-5, *ptrs)[2]

        ref_agg = two()
        ms = time_ms(two, args.repeats)
        base = {"graph": name, "edges": n_e, "receivers": n_d, "mean_degree": round(n_e / n_d, 2)}
        out.add({**base, "impl": "two-kernels", "ms": round(ms, 4)})
        split = n_e / max(n_d, 1) > mod.SPLIT_MIN_MEAN  # long segments run as pieces
        n_seg = edges.dst_pieces.shape[0] - 1 if split else n_d
        default = mod._blocks(n_e / max(n_seg, 1), w)
        for cfg in [None, *CONFIGS]:
            mod.TUNE = cfg
            row = {**base, "impl": "fused", "config": "default" if cfg is None else list(cfg)}
            if cfg is None:
                row["default_blocks"] = list(default)

            def fill(row):
                agg = fused()
                row["max_rel_diff_agg"] = ((agg.float() - ref_agg.float()).abs().max()
                                           / ref_agg.float().abs().max()).item()
                t = time_ms(fused, args.repeats)
                row.update(ms=round(t, 4), GBps=round(gbytes / t * 1e3, 1), speedup=round(ms / t, 3))

            out.add_config(row, fill)
        mod.TUNE = None


if __name__ == "__main__":
    main()
