"""Compiler warp specialisation of the GEMM-fused edge-MLP kernels, against their current launch parameters.

The persistent TMA kernel of :mod:`weathergnn.ops.triton.edge_linear_tma`
runs its matrix products and its epilogue (gathers, SiLU, residual sums) in
the same warps, one after the other: in the 1b0669f mesh2grid profile its
four calls take 16.8 ms where the bare products take about 10.8. With a
ninth configuration entry ``WS = 1`` the tile loop is
``tl.range(..., warp_specialize=True)`` instead of a flattened loop, and
Triton (>= 3.5 on Hopper) moves the TMA loads into producer warps. The same
option exists for the row loop of :mod:`weathergnn.ops.triton.silu_weight_grad`
(sixth entry).

On mesh2grid-like edges (3,114,720 edges, 3 per receiver, 40,962 senders,
latent and hidden 512, bf16) this script times, in one run, every kernel use
of the interaction layer (``gather_silu``, ``silu_in`` = the second layer with
the SiLU on load, ``dsilu``, ``residual``, ``plain`` = the bare product,
``silu_weight_grad``) at its current default configuration and at each
warp-specialised candidate, checks that each candidate's result equals the
default's (the same tiles summed in the same order; the largest difference
is recorded), and records cuBLAS on the bare product. A candidate that does
not compile is recorded with its error. CUDA events, L2 flushed before each
sample, median of ``--repeats``.

    python benchmarks/kernel_sweep_warp_specialize.py --json $OUT/warp_specialize_sweep.json
"""

from __future__ import annotations

import argparse
import json

import torch
import torch.nn.functional as F
from kernel_sweep_edge_linear import edge_mlp_operands, mesh2grid_sweep, run_header

from weathergnn.benchmarking import timing
from weathergnn.ops.triton import edge_linear as el
from weathergnn.ops.triton import edge_linear_tma as tma
from weathergnn.ops.triton import silu_weight_grad as swg

WS_CONFIGS = [  # (BM, BN, BK, warps, stages, SUB, programs per SM, TMA stores, WS = 1)
    (128, 256, 64, 8, 3, 2, 1, 1, 1), (128, 256, 64, 8, 3, 2, 1, 0, 1), (128, 256, 64, 8, 4, 2, 1, 0, 1),
    (128, 128, 64, 8, 3, 2, 1, 0, 1), (128, 128, 64, 8, 4, 2, 1, 1, 1), (128, 128, 64, 4, 3, 1, 1, 0, 1),
    (128, 128, 64, 4, 4, 2, 2, 0, 1), (64, 256, 64, 4, 3, 2, 1, 0, 1), (256, 128, 64, 8, 3, 2, 1, 0, 1),
    (128, 256, 64, 8, 2, 1, 1, 0, 1),
]
WGRAD_WS_CONFIGS = [  # (BM, BN, BK, warps, stages, WS = 1)
    (512, 64, 64, 8, 3, 1), (256, 128, 64, 8, 3, 1), (256, 128, 64, 8, 4, 1), (128, 256, 64, 8, 3, 1),
    (128, 128, 64, 4, 4, 1), (256, 64, 64, 4, 4, 1),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args, dev, (n_e, n_s, n_d, w), bf, (src, dst, *_) = mesh2grid_sweep(ap)
    e, w1, w2, b1, b2, ps, pd = edge_mlp_operands(n_e, n_s, n_d, w, bf)
    gy, g_out, g_pre = (torch.randn(1, n_e, w, **bf) for _ in range(3))
    g_agg = torch.randn(1, n_d, w, **bf)
    pre = el.linear_gather_add(e, w1, b1, ps, pd, src, dst)
    flop = 2.0 * n_e * w * w

    def t(fn) -> float:
        return timing.measure(fn, device=dev, warmup=2, repeats=args.repeats).median_ms

    uses = {  # name: (configuration key, call)
        "gather_silu": (el.MODE_GATHER_SILU, lambda: el.linear_gather_add(e, w1, b1, ps, pd, src, dst)),
        "silu_in": (el.KEY_SILU_IN, lambda: el.silu_linear(pre, w2, b2)),
        "dsilu": (el.MODE_DSILU, lambda: el.linear_silu_backward(gy, w2, pre)),
        "residual": (el.MODE_RESIDUAL, lambda: el.linear_residual_backward(g_pre, w1, g_out, g_agg, dst, 1)),
    }
    result = {**run_header(dev, n_e, n_s, n_d, w),
              "config_tma": "(BM, BN, BK, warps, stages, SUB, programs per SM, TMA stores, WS)",
              "config_wgrad": "(BM, BN, BK, warps, stages, WS)", "uses": {}}

    def save():
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=1)

    def one(label, apply, fn, cfg, ref):
        apply(cfg)
        row = {"config": list(cfg)}
        try:
            out = fn()
            row["max_abs_diff_vs_default"] = float((out.float() - ref.float()).abs().max()) if ref is not None else 0.0
            del out
            ms = t(fn)
            row.update(ms=round(ms, 4), TFLOPs=round(flop / ms / 1e9, 1))
        except Exception as err:  # noqa: BLE001 - a candidate may not compile (shared memory, registers, WS)
            row["error"] = f"{type(err).__name__}: {str(err)[:300]}"
        print(label, row, flush=True)
        result.setdefault("rows_so_far", []).append({"use": label, **row})
        save()  # a run cut short keeps what it measured
        return row

    bare = lambda: torch.ops.aten.mm(pre.view(-1, w), w2.t())  # noqa: E731 - cuBLAS on the same operands
    plain_out, w2_kn = torch.empty(1, n_e, w, **bf), w2.t().contiguous()
    sms = torch.cuda.get_device_properties(dev).multi_processor_count
    plain_cfg = {"cfg": el.GPU_CONFIG_TMA[el.MODE_PLAIN]}

    def plain():  # MODE_PLAIN without SiLU on load: the bare Triton product, at plain_cfg
        tma.launch(tma.MODE_PLAIN, pre, w2_kn, None, None, None, None, None, plain_out, None, n_e, 0, 0, 1, 1, True,
                   plain_cfg["cfg"], sms, ieee=False)
        return plain_out

    uses["plain"] = (el.MODE_PLAIN, plain)
    for name, (key, fn) in uses.items():
        if name == "plain":
            def apply(cfg):
                plain_cfg["cfg"] = cfg
        else:
            def apply(cfg, key=key):
                el.TUNE_TMA[key] = cfg
        default_cfg = el.GPU_CONFIG_TMA[key]
        apply(default_cfg)
        ref = fn().clone()
        rows = [dict(one(f"{name} default", apply, fn, default_cfg, ref), default=True)]
        rows += [one(f"{name} ws", apply, fn, cfg, ref) for cfg in WS_CONFIGS]
        el.TUNE_TMA.pop(key, None)
        del ref
        ok = [r for r in rows if "ms" in r]
        best = min(ok, key=lambda r: r["ms"]) if ok else None
        result["uses"][name] = {"rows": rows, "best": best, "default_ms": rows[0].get("ms")}
        print(name, "best", best, flush=True)

    ref = swg.silu_weight_grad(gy, pre).clone()
    wg = lambda: swg.silu_weight_grad(gy, pre)  # noqa: E731
    rows = [dict(one("silu_weight_grad default", lambda c: setattr(swg, "TUNE", c), wg, swg.GPU_CONFIG, ref),
                 default=True)]
    rows += [one("silu_weight_grad ws", lambda c: setattr(swg, "TUNE", c), wg, cfg, ref) for cfg in WGRAD_WS_CONFIGS]
    swg.TUNE = None
    ok = [r for r in rows if "ms" in r]
    result["uses"]["silu_weight_grad"] = {"rows": rows, "best": min(ok, key=lambda r: r["ms"]) if ok else None,
                                          "default_ms": rows[0].get("ms")}
    result["cublas_ms"] = {"mm [E, 512] x [512, 512]": round(t(bare), 4),
                           "linear(silu(pre))": round(t(lambda: F.linear(F.silu(pre), w2, b2)), 4)}
    summary = {k: (v["default_ms"], v["best"] and v["best"]["ms"], v["best"] and v["best"]["config"])
               for k, v in result["uses"].items()}
    result["summary_default_ms_best_ms_config"] = summary
    result.pop("rows_so_far", None)
    print(json.dumps(summary, indent=1), result["cublas_ms"])
    save()


if __name__ == "__main__":
    main()
