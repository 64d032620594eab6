"""SiLU on load: the edge MLP's second layer without ``a = silu(pre)`` in memory, against writing it.

The GEMM-fused interaction edge update (``model.edge_gemm: triton``) used to
write ``a = silu(pre)`` (``[E, H]``, 3.2 GB on the mesh2grid edges) in the
forward, for cuBLAS's ``y = a W2^T + b2``, and again in the backward, for
cuBLAS's ``dL/dW2 = dL/dy^T a``. Now both products apply the SiLU to ``pre``
as they load it. On the mesh2grid edge set of the 0.25 degree graphs
(3,114,720 edges, latent and hidden 512, bf16) this script times, in one run:

* forward: ``linear_gather_add`` + ``silu_linear`` (SiLU on load, TMA
  configurations swept) against ``linear_gather_add_silu`` + cuBLAS;
* backward: ``silu_weight_grad`` (launch configurations swept, TMA or pointer
  loads) + ``linear_silu_backward`` against the dSiLU kernel writing ``a`` +
  cuBLAS ``dL/dy^T a``;
* the bare products: cuBLAS on a materialised ``a`` (the floor).

Each pair's peak memory above its inputs is recorded too. CUDA events, L2
flushed before each sample, median of ``--repeats``.

    python benchmarks/kernel_sweep_silu_on_load.py --json $OUT/silu_on_load.json
"""

from __future__ import annotations

import argparse
import json

import torch
import torch.nn.functional as F
from kernel_sweep_edge_linear import edge_mlp_operands, mesh2grid_sweep, run_header, time_configs, TMA_CONFIGS

from weathergnn.benchmarking import timing
from weathergnn.ops.triton import edge_linear as el
from weathergnn.ops.triton import silu_weight_grad as swg

WGRAD_CONFIGS = [  # (BM, BN, BK, warps, stages); the 6a5165c sweep's best was (256, 128, 64, 8, 3)
    (256, 128, 64, 8, 3), (256, 128, 64, 8, 4), (256, 128, 32, 8, 4), (256, 128, 64, 8, 2), (512, 64, 64, 8, 3),
    (512, 64, 32, 8, 4), (256, 64, 64, 8, 4), (256, 64, 64, 4, 4), (128, 256, 64, 8, 3), (128, 128, 64, 8, 3),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args, dev, (n_e, n_s, n_d, w), bf, (src, dst, *_) = mesh2grid_sweep(ap)
    e, w1, w2, b1, b2, ps, pd = edge_mlp_operands(n_e, n_s, n_d, w, bf)
    gy = torch.randn(1, n_e, w, **bf)
    pre = el.linear_gather_add(e, w1, b1, ps, pd, src, dst)
    a = F.silu(pre)
    flop = 2.0 * n_e * w * w

    def t(fn) -> float:
        return timing.measure(fn, device=dev, warmup=2, repeats=args.repeats).median_ms

    def peak(fn) -> float:
        """GiB allocated above what was live before ``fn`` (its outputs and temporaries)."""
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(dev)
        base = torch.cuda.memory_allocated(dev)
        out = fn()
        torch.cuda.synchronize()
        del out
        return round((torch.cuda.max_memory_allocated(dev) - base) / 2**30, 3)

    def dsilu_writing_a():  # the previous backward: dL/dpre and a from one kernel, then cuBLAS
        g_pre, a_ = torch.empty_like(pre), torch.empty_like(pre)
        el._launch(el.MODE_DSILU, gy, w2, None, pre, None, None, None, g_pre, a_, n_e, 0, 0, 1, 1, True)
        return g_pre, gy.view(-1, w).t().mm(a_.view(-1, w))

    pairs = {
        "forward_silu_on_load": lambda: el.silu_linear(el.linear_gather_add(e, w1, b1, ps, pd, src, dst), w2, b2),
        "forward_writing_a": lambda: F.linear(el.linear_gather_add_silu(e, w1, b1, ps, pd, src, dst)[1], w2, b2),
        "backward_silu_on_load": lambda: (swg.silu_weight_grad(gy, pre), el.linear_silu_backward(gy, w2, pre)),
        "backward_writing_a": dsilu_writing_a,
    }
    result = {
        **run_header(dev, n_e, n_s, n_d, w),
        "config_tma": "(BM, BN, BK, warps, stages, SUB, programs per SM, TMA stores)",
        "config_wgrad": "(BM, BN, BK, warps, stages)",
    }

    rows, best = time_configs("silu_linear", TMA_CONFIGS, lambda cfg: el.TUNE_TMA.__setitem__(el.KEY_SILU_IN, cfg),
                              lambda: el.silu_linear(pre, w2, b2), t, flop)
    el.TUNE_TMA.pop(el.KEY_SILU_IN, None)
    if best:
        el.GPU_CONFIG_TMA[el.KEY_SILU_IN] = tuple(best["config"])
    result["silu_linear"] = {"sweep": rows, "best": best}

    rows = []
    for tma_loads in (True, False):
        swg.TMA = tma_loads
        rows += time_configs("silu_weight_grad", WGRAD_CONFIGS, lambda cfg: setattr(swg, "TUNE", cfg),
                             lambda: swg.silu_weight_grad(gy, pre), t, flop, tma=tma_loads)[0]
    swg.TUNE, swg.TMA = None, None
    ok = [r for r in rows if "ms" in r]
    best = min(ok, key=lambda r: r["ms"]) if ok else None
    if best:
        swg.GPU_CONFIG, swg.TMA = tuple(best["config"]), best["tma"]
    result["silu_weight_grad"] = {"sweep": rows, "best": best}

    exact = gy.view(-1, w).float().t().mm(a.view(-1, w).float())
    result["silu_weight_grad"]["max_rel_err_vs_fp32"] = round(
        ((swg.silu_weight_grad(gy, pre) - exact).abs().max() / exact.abs().max()).item(), 6)
    result["silu_weight_grad"]["cublas_bf16_max_rel_err_vs_fp32"] = round(
        ((gy.view(-1, w).t().mm(a.view(-1, w)).float() - exact).abs().max() / exact.abs().max()).item(), 6)
    del exact
    result["cublas"] = {
        "y = a W2^T + b2 (a given)": round(t(lambda: F.linear(a, w2, b2)), 4),
        "dL/dW2 = dL/dy^T a (a given)": round(t(lambda: gy.view(-1, w).t().mm(a.view(-1, w))), 4),
        "silu then linear": round(t(lambda: F.linear(F.silu(pre), w2, b2)), 4),
    }
    del a
    result["pairs"] = {name: {"ms": round(t(fn), 4), "peak_GiB_above_inputs": peak(fn)} for name, fn in pairs.items()}
    print(json.dumps({k: v for k, v in result.items() if k not in ("silu_linear", "silu_weight_grad")}, indent=1))
    print("best silu_linear", result["silu_linear"]["best"], "best silu_weight_grad", result["silu_weight_grad"]["best"])
    with open(args.json, "w") as fh:
        json.dump(result, fh, indent=1)


if __name__ == "__main__":
    main()
