"""Launch variants of the two SiLU-on-load Gluon products, against cuBLAS on a materialised ``silu(pre)``.

``silu_linear`` (:mod:`weathergnn.ops.triton.edge_linear_gluon`): rows per
epilogue slice, epilogue warps and registers, ``wgmma`` width.
``silu_weight_grad`` (:mod:`weathergnn.ops.triton.silu_weight_grad_gluon`):
shared-memory stages, steps between pipeline drains, row splits. Every
variant here was compiled for ``sm_90`` with Triton 3.6 before the run (no
spills). bf16, 512 x 512 weights, at ``--rows`` rows; CUDA events, L2 flushed
before each sample, median of ``--repeats``.

    python benchmarks/gluon_variants_sweep.py --json $OUT/gluon_variants.json
"""

from __future__ import annotations

import argparse
import json

import torch
import torch.nn.functional as F

from weathergnn.benchmarking import report, timing
from weathergnn.ops.triton import edge_linear_gluon as elg
from weathergnn.ops.triton import silu_weight_grad_gluon as swgg

SILU_LINEAR = [  # launch options of edge_linear_gluon._launch; {} = silu_linear's defaults
    {}, {"sub_m": 8}, {"sub_m": 32}, {"epi_warps": 8, "epi_regs": 48, "mma_n": 128, "maxnreg": None},
    {"mma_n": 128},
]
WGRAD = [  # (stages, unroll, splits per tile; None = one program per SM)
    (3, 8, None), (4, 4, None), (4, 8, None), (3, 16, None), (4, 16, None), (3, 8, 8), (3, 8, 32),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", default="389340,3114720")
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--json", required=True)
    args = ap.parse_args()
    dev = torch.device("cuda")
    w = 512
    out = {**report.environment(dev), "width": w, "dtype": "bfloat16", "sizes": []}
    bf = dict(device=dev, dtype=torch.bfloat16)
    for rows in [int(r) for r in args.rows.split(",")]:
        torch.manual_seed(0)
        pre, gy = torch.randn(rows, w, **bf), torch.randn(rows, w, **bf)
        w2, b2 = torch.randn(w, w, **bf) / w**0.5, torch.randn(w, **bf)
        a = F.silu(pre)
        y = torch.empty(rows, w, **bf)
        w_kn = w2.t().contiguous()
        flop = 2.0 * rows * w * w
        want_y, want_g = F.linear(a, w2, b2), gy.t().float().mm(a.float())

        def t(fn) -> float:
            return timing.measure(fn, device=dev, warmup=3, repeats=args.repeats).median_ms

        def row(name, fn, want, **tags):
            rec = {"kernel": name, **tags}
            try:
                got = fn()
                rec["max_rel_err_vs_cublas"] = round(
                    ((got.float() - want.float()).abs().max() / want.float().abs().max()).item(), 5)
                ms = t(fn)
                rec.update(ms=round(ms, 4), TFLOPs=round(flop / ms / 1e9, 1))
            except Exception as err:  # noqa: BLE001 - a variant may fail to compile or launch
                rec["error"] = f"{type(err).__name__}: {str(err)[:200]}"
            print(json.dumps(rec), flush=True)
            return rec

        recs = [row("cublas y = a W2^T + b2", lambda: F.linear(a, w2, b2), want_y),
                row("cublas dL/dW2 = dL/dy^T a", lambda: gy.t().mm(a), want_g)]
        for v in SILU_LINEAR:
            recs.append(row("gluon silu_linear", lambda v=v: elg.silu_linear(pre, w_kn, y, b2, **v), want_y,
                            variant=v))
        for stages, unroll, splits in WGRAD:
            recs.append(row("gluon silu_weight_grad",
                            lambda s=stages, u=unroll, k=splits: swgg.silu_weight_grad(gy, pre, k, stages=s, unroll=u),
                            want_g, stages=stages, unroll=unroll, splits=splits))
        out["sizes"].append({"rows": rows, "records": recs})
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
