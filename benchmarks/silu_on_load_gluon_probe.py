"""The SiLU-on-load products on Gluon against cuBLAS on a materialised ``silu(pre)``, at the model's row counts.

For ``y = silu(pre) W2^T + b2`` and ``dL/dW2 = dL/dy^T silu(pre)`` (bf16,
512 x 512 weights) at the row counts of one processor layer (327,660 mesh
edges), one decoder chunk (389,340 mesh2grid edges of 8) and the whole
mesh2grid set (3,114,720), this times in one run:

* ``silu_linear`` on Gluon; with ``--baseline-module PATH`` also the same
  kernel and ``dsilu_linear`` from another version of ``edge_linear_gluon.py``
  (e.g. the one with the exact SiLU), loaded from that file;
* ``silu_weight_grad`` on Gluon and on Triton (``edge_linear.GLUON`` off);
* ``linear_silu_backward`` on Gluon, against cuBLAS ``dL/dy W2`` followed
  by torch's SiLU backward;
* cuBLAS on a materialised ``a = silu(pre)`` (``F.linear``, ``a^T dL/dy``)
  and torch's ``F.silu`` pass that would write ``a``.

CUDA events, L2 flushed before each sample, median of ``--repeats``.

    python benchmarks/silu_on_load_gluon_probe.py --json $OUT/silu_on_load_gluon.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json

import torch
import torch.nn.functional as F

from weathergnn.benchmarking import report, timing
from weathergnn.ops.triton import edge_linear as el
from weathergnn.ops.triton import edge_linear_gluon as elg
from weathergnn.ops.triton import silu_weight_grad as swg


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", default="327660,389340,3114720")
    ap.add_argument("--width", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--baseline-module", default="", help="another edge_linear_gluon.py to time silu_linear from")
    ap.add_argument("--json", required=True)
    args = ap.parse_args()
    dev = torch.device("cuda")
    w = args.width
    base = None
    if args.baseline_module:
        spec = importlib.util.spec_from_file_location("edge_linear_gluon_baseline", args.baseline_module)
        base = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(base)
    out = {**report.environment(dev), "width": w, "dtype": "bfloat16", "baseline_module": args.baseline_module or None, "sizes": []}
    bf = dict(device=dev, dtype=torch.bfloat16)
    for rows in [int(r) for r in args.rows.split(",")]:
        torch.manual_seed(0)
        pre, gy = torch.randn(1, rows, w, **bf), torch.randn(1, rows, w, **bf)
        w2, b2 = torch.randn(w, w, **bf) / w**0.5, torch.randn(w, **bf)
        a = F.silu(pre)
        y = torch.empty(rows, w, **bf)
        w_kn = w2.t().contiguous()
        flop = 2.0 * rows * w * w

        def t(fn) -> float:
            return timing.measure(fn, device=dev, warmup=3, repeats=args.repeats).median_ms

        def check(name, got, want):
            err = (got.float() - want.float()).abs().max().item() / want.float().abs().max().item()
            rec["max_rel_err_vs_cublas"][name] = round(err, 5)

        rec = {"rows": rows, "ms": {}, "max_rel_err_vs_cublas": {}}
        ms = rec["ms"]
        ms["cublas y = a W2^T + b2"] = t(lambda: F.linear(a, w2, b2))
        ms["torch silu pass (writes a)"] = t(lambda: F.silu(pre))
        ms["gluon silu_linear"] = t(lambda: elg.silu_linear(pre[0], w_kn, y, b2))
        check("gluon silu_linear", elg.silu_linear(pre[0], w_kn, y, b2), F.linear(a, w2, b2)[0])
        if base is not None:
            ms["baseline-module silu_linear"] = t(lambda: base.silu_linear(pre[0], w_kn, y, b2))
        ms["cublas dL/dW2 = dL/dy^T a"] = t(lambda: gy[0].t().mm(a[0]))
        ms["gluon silu_weight_grad"] = t(lambda: swg.silu_weight_grad(gy, pre))
        check("gluon silu_weight_grad", swg.silu_weight_grad(gy, pre), gy[0].t().float().mm(a[0].float()))
        el.GLUON = False
        try:
            ms["triton silu_weight_grad"] = t(lambda: swg.silu_weight_grad(gy, pre))
        finally:
            el.GLUON = True
        ms["gluon linear_silu_backward"] = t(lambda: el.linear_silu_backward(gy, w2, pre))
        if base is not None:
            g_pre = torch.empty(rows, w, **bf)
            ms["baseline-module dsilu_linear"] = t(lambda: base.dsilu_linear(gy[0], w2, g_pre, pre[0]))
        pre_r = pre.detach().requires_grad_()

        def cublas_then_silu_backward():
            g_a = gy.matmul(w2)
            return torch.ops.aten.silu_backward(g_a, pre_r)

        ms["cublas dL/dy W2 + torch silu_backward"] = t(cublas_then_silu_backward)
        check("gluon linear_silu_backward", el.linear_silu_backward(gy, w2, pre), cublas_then_silu_backward())
        rec["TFLOPs"] = {k: round(flop / v / 1e9, 1) for k, v in ms.items() if "pass" not in k and "+" not in k}
        rec["ms"] = {k: round(v, 4) for k, v in ms.items()}
        out["sizes"].append(rec)
        print(json.dumps(rec), flush=True)
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
