"""Launch-parameter sweep of the GEMM-fused edge-MLP kernels (``weathergnn.ops.triton.edge_linear``).

On the mesh2grid edge set of the 0.25 degree / refinement-6 graphs (3,114,720
edges into 1,038,240 grid nodes, 3 each, from 40,962 mesh nodes), latent and
hidden 512, bf16, it times each mode of both kernels (the pointer-fed
:mod:`~weathergnn.ops.triton.edge_linear` one and the persistent TMA one of
:mod:`~weathergnn.ops.triton.edge_linear_tma`) for every candidate launch
configuration and, in the same run, what it replaces:

* gather_silu (timed as the layer runs it since 6a5165c: ``linear_gather_add``,
  writing ``pre`` only, the second GEMM applying the SiLU on load): cuBLAS
  ``F.linear`` then the ``gather_add_silu`` kernel;
* dsilu (writing ``dL/dpre`` only since 6a5165c): the ``gather_add_silu``
  recompute, cuBLAS ``dL/dy @ W2`` and the ``gather_add_silu_backward`` kernel;
* residual: cuBLAS ``addmm_`` into a materialised ``dL/de' + dL/dagg[dst]``
  (the tensor the unfused backward writes first);
* plain (TMA kernel without epilogue): the cuBLAS GEMM alone, to show how far
  the Triton GEMM itself is from cuBLAS, apart from its epilogues.

CUDA events, L2 flushed before each sample, median of ``--repeats``. Writes one
JSON file with the GPU name, versions, date and the fastest configuration per mode.

    python benchmarks/kernel_sweep_edge_linear.py --json $OUT/edge_linear_sweep.json [--kernels tma]
"""

from __future__ import annotations

import argparse
import datetime
import json
import traceback

import torch
import torch.nn.functional as F

from weathergnn.benchmarking import timing
from weathergnn.ops import custom_ops as C
from weathergnn.ops.triton import edge_linear as el
from weathergnn.ops.triton import edge_linear_tma as tma

CONFIGS = [  # pointer kernel: (BM, BN, BK, warps, stages)
    (64, 128, 64, 4, 4), (64, 128, 64, 4, 3), (128, 128, 64, 8, 3), (128, 128, 64, 8, 4), (128, 256, 64, 8, 3),
    (64, 256, 64, 8, 3), (128, 64, 64, 4, 4), (64, 64, 64, 4, 4), (256, 128, 64, 8, 3), (64, 128, 128, 4, 3),
]
TMA_CONFIGS = [  # persistent TMA kernel: (BM, BN, BK, warps, stages, SUB, programs per SM, TMA stores)
    (128, 256, 64, 8, 3, 2, 1, 1), (128, 256, 64, 8, 3, 2, 1, 0), (128, 256, 64, 8, 2, 2, 1, 0),
    (256, 128, 64, 8, 3, 2, 1, 0), (128, 128, 64, 8, 2, 2, 2, 0), (128, 128, 64, 8, 2, 2, 2, 1),
    (128, 128, 64, 8, 3, 2, 2, 0), (128, 128, 64, 4, 3, 1, 2, 0), (128, 128, 64, 4, 2, 2, 2, 1),
    (64, 256, 64, 4, 2, 2, 2, 0),
]


def add_size_args(ap: argparse.ArgumentParser) -> None:
    """Options shared by the edge-MLP kernel sweeps: output file, repeats, mesh2grid-like sizes."""
    ap.add_argument("--json", required=True)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--edges", type=int, default=3_114_720)
    ap.add_argument("--senders", type=int, default=40_962)
    ap.add_argument("--width", type=int, default=512)


def run_header(dev: torch.device, n_e: int, n_s: int, n_d: int, w: int) -> dict:
    """GPU, versions, date and sizes of a sweep run (bf16)."""
    return {
        "gpu": torch.cuda.get_device_name(dev), "torch": torch.__version__,
        "triton": __import__("triton").__version__, "date": datetime.date.today().isoformat(),
        "edges": n_e, "senders": n_s, "receivers": n_d, "width": w, "dtype": "bfloat16",
    }


def time_configs(label: str, configs, apply, fn, time_ms, flop: float, **tags):
    """Time ``fn`` after ``apply(cfg)`` for each launch configuration; (rows, fastest row or None).

    A configuration that fails (shared memory, registers) is recorded with its error, not fatal.
    """
    rows = []
    for cfg in configs:
        apply(cfg)
        row = {"config": list(cfg), **tags}
        try:
            ms = time_ms(fn)
            row.update(ms=round(ms, 4), TFLOPs=round(flop / ms / 1e9, 1))
        except Exception as err:  # noqa: BLE001 - a config may not fit (shared memory, registers)
            row["error"] = f"{type(err).__name__}: {str(err)[:200]}"
        rows.append(row)
        print(label, row, flush=True)
    ok = [r for r in rows if "ms" in r]
    return rows, (min(ok, key=lambda r: r["ms"]) if ok else None)


def mesh2grid_like(n_e: int, n_s: int, dev: torch.device):
    """(receivers, bf16 tensor kwargs, (src, dst, dst_ptr, src_perm, src_ptr)): 3 random senders per receiver."""
    torch.manual_seed(0)
    n_d = n_e // 3
    src = torch.randint(0, n_s, (n_e,), device=dev)
    dst = torch.arange(n_d, device=dev).repeat_interleave(3)
    dst_ptr = torch.arange(0, n_e + 1, 3, device=dev)
    src_perm = torch.argsort(src)
    src_ptr = torch.zeros(n_s + 1, dtype=torch.long, device=dev)
    src_ptr[1:] = torch.bincount(src, minlength=n_s).cumsum(0)
    return n_d, dict(device=dev, dtype=torch.bfloat16), (src, dst, dst_ptr, src_perm, src_ptr)


def mesh2grid_sweep(ap: argparse.ArgumentParser):
    """Add the shared size options to ``ap`` (after the caller's own), parse, build :func:`mesh2grid_like` on the GPU.

    Returns ``(args, dev, (n_e, n_s, n_d, w), bf, (src, dst, dst_ptr, src_perm, src_ptr))``.
    """
    add_size_args(ap)
    args = ap.parse_args()
    dev = torch.device("cuda")
    n_e, n_s, w = args.edges, args.senders, args.width
    n_d, bf, index = mesh2grid_like(n_e, n_s, dev)
    return args, dev, (n_e, n_s, n_d, w), bf, index


def gather_gemm_spike(description: str, label: str, kernel, variants) -> None:
    """Main of the GEMM-with-gather-epilogue spikes: check and time ``kernel`` against cuBLAS and the Triton kernel in use.

    ``kernel(e [E, K], w_kn [K, N], out [E, N], bias=None, p_src=None, p_dst=None, src=None, dst=None, **variant)``
    computes ``out = e @ w_kn (+ bias + p_src[src] + p_dst[dst])`` (bf16). Each variant runs bare
    ("<label> plain") and with the gathers ("<label> gather") on mesh2grid-like operands; each row
    records the largest error against float32 over the largest entry and the median time, or the
    error message of a variant that does not compile, and the JSON is rewritten after every row.
    """
    ap = argparse.ArgumentParser(description=description)
    args, dev, (n_e, n_s, n_d, w), bf, (src, dst, *_) = mesh2grid_sweep(ap)
    e = torch.randn(n_e, w, **bf)
    w1 = torch.randn(w, w, **bf) / w**0.5
    w_kn = w1.t().contiguous()
    b1 = torch.randn(w, **bf)
    ps, pd = torch.randn(n_s, w, **bf), torch.randn(n_d, w, **bf)
    flop = 2.0 * n_e * w * w
    exact_plain = e.float() @ w_kn.float()
    exact = exact_plain + b1.float() + ps.float()[src] + pd.float()[dst]
    scale = {"plain": exact_plain.abs().max().item(), "gather": exact.abs().max().item()}
    result = {**run_header(dev, n_e, n_s, n_d, w), "rows": []}

    def record(name, fn, ref, kind, **extra):
        row = {"name": name, **extra}
        try:
            out = fn()
            torch.cuda.synchronize()
            row["max_abs_err_over_max"] = round(((out.float().view_as(ref) - ref).abs().max() / scale[kind]).item(), 6)
            del out
            ms = timing.measure(fn, device=dev, warmup=3, repeats=args.repeats).median_ms
            row.update(ms=round(ms, 4), TFLOPs=round(flop / ms / 1e9, 1))
        except Exception as err:  # noqa: BLE001 - a variant may not compile; record why
            row["error"] = f"{type(err).__name__}: {str(err)[:1500]}"
            traceback.print_exc()
        print(row, flush=True)
        result["rows"].append(row)
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=1)

    out = torch.empty(n_e, w, **bf)
    record("cublas mm", lambda: torch.mm(e, w_kn), exact_plain, "plain")
    def tma_gather():  # the Triton TMA kernel (the model's path before the Gluon kernel, and where that cannot run)
        el.GLUON = False
        try:
            return el.linear_gather_add(e, w1, b1, ps[None], pd[None], src, dst)
        finally:
            el.GLUON = True

    record("triton edge_linear_tma gather", tma_gather, exact, "gather")
    for v in variants:
        record(f"{label} plain", lambda v=v: kernel(e, w_kn, out, **v), exact_plain, "plain", variant=v)
        record(f"{label} gather", lambda v=v: kernel(e, w_kn, out, b1, ps, pd, src, dst, **v), exact, "gather",
               variant=v)
    ok = [r for r in result["rows"] if "ms" in r]
    for kind in ("plain", "gather"):
        result[f"best_{kind}"] = min((r for r in ok if r["name"] == f"{label} {kind}"), key=lambda r: r["ms"],
                                     default=None)
    print({k: v for k, v in result.items() if k.startswith("best")})
    with open(args.json, "w") as fh:
        json.dump(result, fh, indent=1)


def edge_mlp_operands(n_e: int, n_s: int, n_d: int, w: int, bf: dict):
    """Random edge-MLP operands, created in this order: (e [1, E, w], W1, W2 [w, w], b1, b2 [w], p_src [1, Ns, w], p_dst [1, Nd, w])."""
    e = torch.randn(1, n_e, w, **bf)
    w1, w2 = torch.randn(w, w, **bf) / w**0.5, torch.randn(w, w, **bf) / w**0.5
    b1, b2 = torch.randn(w, **bf), torch.randn(w, **bf)
    return e, w1, w2, b1, b2, torch.randn(1, n_s, w, **bf), torch.randn(1, n_d, w, **bf)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kernels", default="pointer,tma", help="which kernels to sweep: pointer, tma or both")
    args, dev, (n_e, n_s, n_d, w), bf, (src, dst, dst_ptr, src_perm, src_ptr) = mesh2grid_sweep(ap)
    e = torch.randn(1, n_e, w, **bf)
    w1, w2 = torch.randn(w, w, **bf) / w**0.5, torch.randn(w, w, **bf) / w**0.5
    b1 = torch.randn(w, **bf)
    ps, pd = torch.randn(1, n_s, w, **bf), torch.randn(1, n_d, w, **bf)
    gy, g_out = torch.randn(1, n_e, w, **bf), torch.randn(1, n_e, w, **bf)
    g_agg = torch.randn(1, n_d, w, **bf)
    pre = el.linear_gather_add(e, w1, b1, ps, pd, src, dst)
    x = F.linear(e, w1, b1)
    g_pre = torch.randn(1, n_e, w, **bf)
    gas = (src, dst, dst_ptr, src_perm, src_ptr)

    def t(fn) -> float:
        return timing.measure(fn, device=dev, warmup=2, repeats=args.repeats).median_ms

    flop = 2.0 * n_e * w * w
    fused = {
        "gather_silu": (el.MODE_GATHER_SILU, lambda: el.linear_gather_add(e, w1, b1, ps, pd, src, dst)),
        "dsilu": (el.MODE_DSILU, lambda: el.linear_silu_backward(gy, w2, pre)),
        "residual": (el.MODE_RESIDUAL, lambda: el.linear_residual_backward(g_pre, w1, g_out, g_agg, dst, 1)),
    }
    baseline = {
        "gather_silu": lambda: C.gather_add_silu(F.linear(e, w1, b1), ps, pd, *gas),
        "dsilu": lambda: (C.gather_add_silu(x, ps, pd, *gas),
                          C.gather_add_silu_backward(gy.matmul(w2), x, ps, pd, src, dst)),
        "residual": lambda: (g_out + g_agg[:, dst]).view(-1, w).addmm_(g_pre.view(-1, w), w1),
    }
    gemm_only = {"gather_silu": lambda: F.linear(e, w1), "dsilu": lambda: gy.matmul(w2),
                 "residual": lambda: g_pre.matmul(w1)}
    result = {
        **run_header(dev, n_e, n_s, n_d, w),
        "config": "(BM, BN, BK, warps, stages)", "config_tma": "(BM, BN, BK, warps, stages, SUB, programs per SM, TMA stores)", "modes": {},
    }
    kernels = args.kernels.split(",")

    def sweep(name, mode, fn, kernel):
        table, configs = (el.TUNE, CONFIGS) if kernel == "pointer" else (el.TUNE_TMA, TMA_CONFIGS)
        el.TMA = kernel == "tma"
        found = time_configs(f"{name} {kernel}", configs, lambda cfg: table.__setitem__(mode, cfg), fn, t, flop)
        table.pop(mode, None)
        el.TMA = None
        return found

    plain_out = torch.empty(1, n_e, w, **bf)
    w1_kn = w1.t().contiguous()
    fused["plain"] = (tma.MODE_PLAIN, lambda: tma.launch(
        tma.MODE_PLAIN, e, w1_kn, None, None, None, None, None, plain_out, None, n_e, 0, 0, 1, 1, True,
        el.TUNE_TMA.get(tma.MODE_PLAIN, el.GPU_CONFIG_TMA[tma.MODE_PLAIN]),
        torch.cuda.get_device_properties(dev).multi_processor_count, ieee=False))
    baseline["plain"] = gemm_only["plain"] = gemm_only["gather_silu"]
    for name, (mode, fn) in fused.items():
        entry = {}
        for kernel in kernels:
            if kernel == "pointer" and name == "plain":
                continue
            rows, best = sweep(name, mode, fn, kernel)
            suffix = "" if kernel == "pointer" else "_tma"
            entry["sweep" + suffix], entry["best" + suffix] = rows, best
        if "pointer" not in kernels and name != "plain":  # the pointer kernel at its chosen parameters
            el.TMA = False
            entry["pointer_default"] = {"config": list(el.GPU_CONFIG[mode]), "ms": round(t(fn), 4)}
            el.TMA = None
        base_ms, gemm_ms = t(baseline[name]), t(gemm_only[name])
        entry.update({
            "unfused_ms": round(base_ms, 4), "cublas_gemm_only_ms": round(gemm_ms, 4),
            "cublas_gemm_TFLOPs": round(flop / gemm_ms / 1e9, 1),
        })
        for suffix in ("", "_tma"):
            if entry.get("best" + suffix):
                entry["speedup_vs_unfused" + suffix] = round(base_ms / entry["best" + suffix]["ms"], 3)
        result["modes"][name] = entry
        print(name, {k: v for k, v in entry.items() if not k.startswith("sweep")}, flush=True)
        with open(args.json, "w") as fh:  # after every mode, so a run cut short keeps what it measured
            json.dump(result, fh, indent=1)


if __name__ == "__main__":
    main()
