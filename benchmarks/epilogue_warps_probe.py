"""Probe: how many warps per SM does the edge MLP's gather epilogue need to keep up with the product?

In the Gluon epilogue-partition spike (``gluon_epilogue_partition_spike.py``)
the bare ``[3.1 M, 512] x [512, 512]`` product runs at cuBLAS speed (2.5-2.6 ms),
but with the gather epilogue (``out = c + b1 + p_src[src] + p_dst[dst]``) in one
4-warp partition it takes 3.7-3.8 ms: the epilogue is the bottleneck. More
epilogue warps cannot be tried there (16 warps leave too few registers for the
products, see that spike). This probe runs the epilogue alone, as a persistent
Triton kernel with one program per SM walking the same 128 x 256 tiles in the
same order, in row slices, with 4, 8 or 16 warps:

* ``c`` comes from a small ``[128, 256]`` buffer read again for every tile (it
  stays in L1/L2, as the accumulator in shared memory would);
* the gathered rows, the indices and the stored rows go to and from HBM as in
  the fused kernel.

If 4 warps per SM already finish in about the product's time, more epilogue
warps would not help; if 8 or 16 are much faster, the fused kernel needs a
bigger epilogue partition. Two programs per SM are timed too, for reference.

    python benchmarks/epilogue_warps_probe.py --json $OUT/epilogue_warps_probe.json
"""

from __future__ import annotations

import argparse
import json

import torch
import triton
import triton.language as tl

from weathergnn.benchmarking import timing


@triton.jit
def _gather_epilogue_kernel(c_ptr, out_ptr, bias_ptr, ps_ptr, pd_ptr, src_ptr, dst_ptr, E, NUM_PROGS,
                            N: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr, SUB_M: tl.constexpr):
    num_n: tl.constexpr = N // BN
    n_tiles = tl.cdiv(tl.cdiv(E, BM) * num_n - tl.program_id(0), NUM_PROGS)
    for i in range(n_tiles):
        t = tl.program_id(0) + i * NUM_PROGS
        off_m = (t // num_n) * BM
        cols = (t % num_n) * BN + tl.arange(0, BN)
        bias = tl.load(bias_ptr + cols).to(tl.float32)
        for j in tl.static_range(BM // SUB_M):
            local = j * SUB_M + tl.arange(0, SUB_M)
            rows = off_m + local
            live = rows < E
            rows_c = tl.minimum(rows, E - 1).to(tl.int64)
            s_idx = tl.load(src_ptr + rows_c).to(tl.int64)
            d_idx = tl.load(dst_ptr + rows_c).to(tl.int64)
            x = tl.load(c_ptr + local[:, None] * BN + tl.arange(0, BN)[None, :]).to(tl.float32) + bias[None, :]
            x += tl.load(ps_ptr + s_idx[:, None] * N + cols[None, :]).to(tl.float32)
            x += tl.load(pd_ptr + d_idx[:, None] * N + cols[None, :]).to(tl.float32)
            tl.store(out_ptr + rows_c[:, None] * N + cols[None, :], x.to(tl.bfloat16), mask=live[:, None])


def gather_epilogue(c, out, bias, ps, pd, src, dst, *, programs: int, warps: int, sub_m: int):
    """``out[e] = c[e % 128, tile cols] + bias + ps[src[e]] + pd[dst[e]]`` over 128 x 256 tiles, ``programs`` persistent."""
    n_e, n = out.shape
    _gather_epilogue_kernel[(programs,)](c, out, bias, ps, pd, src, dst, n_e, programs, N=n, BM=128, BN=256,
                                         SUB_M=sub_m, num_warps=warps, num_stages=1)
    return out


def _cublas_ms(n_e: int, w: int, bf: dict, dev: torch.device, repeats: int) -> float:
    e, w1 = torch.randn(n_e, w, **bf), torch.randn(w, w, **bf)
    return round(timing.measure(lambda: torch.mm(e, w1), device=dev, warmup=3, repeats=repeats).median_ms, 4)


def main() -> None:
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from kernel_sweep_edge_linear import mesh2grid_sweep, run_header

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args, dev, (n_e, n_s, n_d, w), bf, (src, dst, *_) = mesh2grid_sweep(ap)
    sms = torch.cuda.get_device_properties(dev).multi_processor_count
    c = torch.randn(128, 256, **bf)
    bias = torch.randn(w, **bf)
    ps, pd = torch.randn(n_s, w, **bf), torch.randn(n_d, w, **bf)
    out = torch.empty(n_e, w, **bf)
    rows = torch.arange(n_e, device=dev) % 128
    col_block = torch.arange(w, device=dev) % 256
    exact = c.float()[rows][:, col_block] + bias.float() + ps.float()[src] + pd.float()[dst]
    result = {**run_header(dev, n_e, n_s, n_d, w), "sms": sms, "rows": []}
    result["cublas_mm_ms"] = _cublas_ms(n_e, w, bf, dev, args.repeats)  # the product the epilogue must keep up with
    for per_sm in (1, 2):
        for warps in (4, 8, 16):
            for sub_m in (8, 16, 32):
                row = {"programs_per_sm": per_sm, "warps": warps, "sub_m": sub_m}
                try:
                    def fn(per_sm=per_sm, warps=warps, sub_m=sub_m):
                        return gather_epilogue(c, out, bias, ps, pd, src, dst, programs=per_sm * sms, warps=warps,
                                               sub_m=sub_m)
                    err = (fn().float() - exact).abs().max().item() / exact.abs().max().item()
                    row["max_abs_err_over_max"] = round(err, 6)
                    row["ms"] = round(timing.measure(fn, device=dev, warmup=3, repeats=args.repeats).median_ms, 4)
                except Exception as exc:  # noqa: BLE001 - record a configuration that does not compile
                    row["error"] = f"{type(exc).__name__}: {str(exc)[:500]}"
                print(row, flush=True)
                result["rows"].append(row)
                with open(args.json, "w") as fh:
                    json.dump(result, fh, indent=1)
    print({"cublas_mm_ms": result["cublas_mm_ms"]})


if __name__ == "__main__":
    main()
