"""An embedder's first layer ``a = silu(x W1^T + b1)`` over 4 features: one Triton pass against torch.

The edge embedders (grid2mesh, mesh2grid, mesh) are MLPs over 4 static
features (:class:`weathergnn.models.mlp.MLP`). At the model's row counts (one
decoder chunk of 389,340 mesh2grid edges, one encoder chunk of 813,140
grid2mesh edges, the 3,114,720 mesh2grid edges), bf16, hidden 512, this
times in one run, forward and backward (``dL/dW1``, ``dL/db1``, with an
upstream ``dL/da``):

* the two kernels of ``ops/triton/narrow_linear_silu.py`` on their own, for
  each block configuration in ``--forward-configs`` / ``--backward-configs``,
  and both through ``dispatch.linear_silu`` with the defaults;
* torch: ``F.silu(F.linear(x, w1, b1))`` under bf16 autocast (cuBLAS
  ``addmm`` then a SiLU pass), eager and ``torch.compile``'d;
* a copy and a fill of ``a``'s size (bytes floors: the forward writes ``a``,
  the backward reads ``dL/da``).

CUDA events, L2 flushed before each sample, median of ``--repeats``. Also
the largest deviation of the Triton result from torch's (relative to the
largest entry).

    python benchmarks/narrow_linear_silu_probe.py --json $OUT/narrow_linear_silu.json
"""

from __future__ import annotations

import argparse
import json

import torch
import torch.nn.functional as F

from weathergnn.benchmarking import report, timing
from weathergnn.ops import dispatch
from weathergnn.ops.triton import narrow_linear_silu as nls


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", default="389340,813140,3114720")
    ap.add_argument("--features", type=int, default=4)
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--forward-configs", default="32x256x4,16x512x4,64x256x8,32x512x8,128x64x4,64x128x4",
                    help="forward kernel: BLOCK_R x BLOCK_H x warps")
    ap.add_argument("--backward-configs",
                    default="32x256x4x3,64x128x4x3,32x256x8x3,16x512x4x3,64x128x8x3",
                    help="backward kernel: BLOCK_R x BLOCK_H x warps x stages")
    ap.add_argument("--json", required=True)
    args = ap.parse_args()
    dev = torch.device("cuda")
    k, h = args.features, args.hidden
    out = {**report.environment(dev), "features": k, "hidden": h, "dtype": "bfloat16", "sizes": []}
    parse = lambda spec: [tuple(int(v) for v in c.split("x")) for c in spec.split(",")]
    fwd_configs, bwd_configs = parse(args.forward_configs), parse(args.backward_configs)
    default_fwd, default_bwd = nls.FORWARD_CONFIG, nls.BACKWARD_CONFIG
    out["defaults"] = {"forward": default_fwd, "backward": default_bwd}

    def torch_path(x, w, b):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            return F.silu(F.linear(x, w, b))

    compiled = torch.compile(torch_path, dynamic=False)
    for rows in [int(r) for r in args.rows.split(",")]:
        torch.manual_seed(0)
        x = torch.randn(rows, k, device=dev)
        w = (torch.randn(h, k, device=dev) / k**0.5).requires_grad_()
        b = torch.randn(h, device=dev).requires_grad_()
        g = torch.randn(rows, h, device=dev, dtype=torch.bfloat16)

        def t(fn) -> float:
            return timing.measure(fn, device=dev, warmup=3, repeats=args.repeats).median_ms

        def fwd_bwd(fn):
            def step():
                a = fn(x, w, b)
                torch.autograd.grad(a, (w, b), g)
            return step

        def triton_path(x, w, b):
            with torch.autocast("cuda", dtype=torch.bfloat16):
                return dispatch.linear_silu(x, w, b, backend="triton")

        rec = {"rows": rows, "ms": {}}
        ms = rec["ms"]
        ms["copy of a's size (read + write)"] = t(lambda: g.clone())
        buf = torch.empty_like(g)
        ms["write of a's size (fill)"] = t(lambda: buf.fill_(1.0))
        for name, fn in (("torch eager", torch_path), ("torch compiled", compiled)):
            ms[f"{name} forward"] = t(lambda: fn(x, w, b))
            ms[f"{name} forward+backward"] = t(fwd_bwd(fn))
        xb, wb, bb = x.bfloat16(), w.detach().bfloat16(), b.detach().bfloat16()
        for cfg in fwd_configs:
            nls.FORWARD_CONFIG = cfg
            ms["triton forward " + "x".join(map(str, cfg))] = t(lambda: nls.narrow_linear_silu(xb, wb, bb))
        for cfg in bwd_configs:
            nls.BACKWARD_CONFIG = cfg
            ms["triton backward " + "x".join(map(str, cfg))] = t(lambda: nls.narrow_linear_silu_backward(g, xb, wb, bb))
        nls.FORWARD_CONFIG, nls.BACKWARD_CONFIG = default_fwd, default_bwd
        ms["triton (defaults) forward"] = t(lambda: triton_path(x, w, b))
        ms["triton (defaults) forward+backward"] = t(fwd_bwd(triton_path))
        nls.FORWARD_CONFIG, nls.BACKWARD_CONFIG = default_fwd, default_bwd
        a_t, a_r = triton_path(x, w, b), torch_path(x, w, b)
        gw_t, gb_t = torch.autograd.grad(a_t, (w, b), g)
        gw_r, gb_r = torch.autograd.grad(a_r, (w, b), g)
        rec["max_rel_dev_vs_torch"] = {
            n: round(((p.float() - q.float()).abs().max() / q.float().abs().max()).item(), 5)
            for n, p, q in (("a", a_t, a_r), ("dW1", gw_t, gw_r), ("db1", gb_t, gb_r))}
        rec["ms"] = {n: round(v, 4) for n, v in ms.items()}
        out["sizes"].append(rec)
        print(json.dumps(rec), flush=True)
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
