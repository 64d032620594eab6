"""LayerNorm-with-residual kernels (``ops/triton/layer_norm_residual.py``): launch configurations on real row counts (GPU).

The backward kernel reads ``dL/dout`` and ``y`` (and, on edge rows of an
interaction layer, ``dL/dagg[dst]`` gathered per row), writes ``dL/dy`` and
per-program column partial sums; two row reductions per row (``mean(gx)``,
``mean(gx * xhat)``). With several warps per program a row is split across
warps and each row reduction goes through shared memory and a barrier; with
one warp it stays in shuffles. This sweep times each ``(rows per block,
warps, rows per backward program)`` (``layer_norm_residual.TUNE``) on:

* the edge rows of the three edge sets of the 0.25 deg grid and refinement-6
  multimesh (327,660 / 1,618,824 / 3,114,720), with ``dL/dagg`` gathered, as
  the interaction layer's edge update calls it;
* the node rows (40,962 mesh, 1,038,240 grid), with the MLP's last bias on
  load, as a node MLP calls it;

forward and backward (partial sums reduced, as the op returns them), bf16,
latent 512. Timing is the suite's (:func:`weathergnn.benchmarking.timing.measure`,
L2 flushed before each sample): ``ms`` wall, ``queued_ms`` with the launches
queued ahead (GPU time). GB/s under the bytes model: forward reads ``y`` and
``res`` and writes ``out``; backward reads ``dL/dout`` and ``y`` and writes
``dL/dy`` (the gathered ``dL/dagg`` rows and the statistics not counted).
Every configuration's outputs are compared with the default's. The
kernel variants compared at ff8a052 (``--variants``, since removed with the
losing variant) are in ``ln_backward_variants_ff8a052.json``.

    python benchmarks/kernel_sweep_ln_backward.py --json OUT.json
"""

from __future__ import annotations

import argparse

import torch
from sweep_file import SweepFile, measure

#: (rows per block, warps, rows per backward program); None: the module's default.
CONFIGS = [None, (1, 1, 32), (1, 1, 64), (2, 1, 64), (2, 1, 256), (4, 1, 128), (2, 2, 64), (4, 2, 128), (2, 4, 64)]


def time_ms(fn, repeats: int) -> tuple[float, float]:
    """(median wall ms, median queued ms) of ``fn``; queued falls back to wall where it was not taken."""
    m = measure(fn, repeats, queued=True)
    return m.median_ms, m.queued_median_ms if m.queued_median_ms is not None else m.median_ms


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", required=True)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--width", type=int, default=512)
    ap.add_argument("--default-only", action="store_true", help="time the module's default configuration only")
    args = ap.parse_args()
    from weathergnn.benchmarking.cases import grid_axes
    from weathergnn.graphs.build import build_graphs
    from weathergnn.models.processors import EdgeBuffers
    from weathergnn.ops.triton import layer_norm_residual as mod

    dev = torch.device("cuda")
    graphs = build_graphs(*grid_axes(0.25), 6)
    w = args.width
    bf = dict(device=dev, dtype=torch.bfloat16)
    sweep = SweepFile(args.json, dev, width=w, dtype="bfloat16", grid_deg=0.25, refinement=6)
    cases = []
    for name in ("mesh", "grid2mesh", "mesh2grid"):
        edges = EdgeBuffers(getattr(graphs, name)).to(dev)
        cases.append((f"{name} edges", edges.num_edges, edges))
    cases += [("mesh nodes", graphs.mesh.num_dst, None), ("grid nodes", graphs.num_grid_nodes, None)]
    for label, rows, edges in cases:
        y, res, g = (torch.randn(rows, w, **bf) for _ in range(3))
        gamma, beta, yb = (torch.randn(w, **bf) for _ in range(3))
        gagg = torch.randn(1, edges.num_dst, w, **bf) if edges is not None else None
        dst = edges.dst if edges is not None else None
        y_bias = None if edges is not None else yb
        res_in = res if edges is not None else None
        out, mean, rstd = mod.layer_norm_residual(y, res_in, gamma, beta, 1e-5, y_bias)

        def fwd():
            return mod.layer_norm_residual(y, res_in, gamma, beta, 1e-5, y_bias)

        def bwd():
            return mod.layer_norm_residual_backward(g, y, gamma, mean, rstd, gagg, dst, False, y_bias)

        mod.TUNE = None
        ref_fwd, ref_bwd = fwd(), bwd()  # the module's defaults: the reference for every row
        gbytes = 3 * rows * w * 2 / 1e9
        base = {"rows_of": label, "rows": rows, "gathered_grad_agg": edges is not None}
        for cfg in [None] if args.default_only else CONFIGS:
            mod.TUNE = cfg

            def fill(row):
                o, b = fwd(), bwd()
                row["max_abs_diff_out"] = (o[0].float() - ref_fwd[0].float()).abs().max().item()
                row["max_abs_diff_dy"] = (b[0].float() - ref_bwd[0].float()).abs().max().item()
                row["max_rel_diff_sums"] = ((b[1] - ref_bwd[1]).abs().max() / ref_bwd[1].abs().max()).item()
                for what, fn in (("fwd", fwd), ("bwd", bwd)):
                    ms, qms = time_ms(fn, args.repeats)
                    row.update({f"{what}_ms": round(ms, 4), f"{what}_queued_ms": round(qms, 4),
                                f"{what}_GBps": round(gbytes / qms * 1e3, 1)})

            sweep.add_config({**base, "config": "default" if cfg is None else list(cfg)}, fill)
        mod.TUNE = None


if __name__ == "__main__":
    main()
