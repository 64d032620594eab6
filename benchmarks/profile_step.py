"""Where the time of one benchmark case goes: CUDA kernel time by kind (tuning aid).

Builds the suite's cases (``weathergnn.benchmarking.cases``, same set-up as
``weathergnn benchmark``), times each with ``benchmarking.timing.measure``, then
runs ``--profile-steps`` more steps under ``torch.profiler`` and sums the CUDA
kernel time by kind: GEMM (cuBLAS / CUTLASS), our Triton kernels (by name),
inductor-generated Triton kernels, and the rest (elementwise, copies, reductions),
with the top kernels by total time. Writes one JSON file.

    python benchmarks/profile_step.py --case step --impls ours-triton-chunked,ours-triton-chunked-blocks-compiled \\
        --json $OUT/profile.json
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import defaultdict

import torch

from weathergnn.benchmarking import timing
from weathergnn.benchmarking.clocks import ClockMonitor
from weathergnn.benchmarking.cases import CASE_IMPLS, Context

OUR_KERNELS = ("_csr_sum", "_edge_dot", "_gather_add_silu", "_ln_res_", "_edge_linear", "_silu_weight_grad",
               "_epilogue_linear", "_silu_wgrad",  # the Gluon kernels
               "_narrow_linear_silu")


def kind_of(name: str) -> str:
    """Classify a CUDA kernel name."""
    low = name.lower()
    if any(k in name for k in OUR_KERNELS):
        return "ours-triton"
    if re.search(r"gemm|cutlass|xmma|nvjet|sm90_|ampere_|cublas", low):
        return "gemm"
    if low.startswith("triton_") or "triton_" in low:
        return "inductor-triton"
    if "memcpy" in low or "memset" in low:
        return "copy/memset"
    return "other"


def _self_device_us(avg) -> float:
    """CUDA time (us) of the kernels an operator average launches itself (``self_cuda_time_total`` before torch 2.4)."""
    us = getattr(avg, "self_device_time_total", None)
    return avg.self_cuda_time_total if us is None else us


def busy_and_gaps(intervals: list[tuple[float, float]], steps: int) -> dict:
    """GPU timeline of the profiled steps from kernel (start, end) intervals in microseconds.

    ``span``: first kernel start to last kernel end; ``busy``: the union of the kernel
    intervals (overlapping kernels counted once); ``idle``: span - busy, i.e. the gaps
    between kernels (launch gaps inside a CUDA graph, host stalls, the gap between steps).
    All per step, ms; ``kernels`` per step; ``gaps_over_us``: how many gaps per step exceed
    1, 5 and 50 us, and the idle time they hold.
    """
    intervals = sorted(intervals)
    busy, gaps = 0.0, []
    cur_s, cur_e = intervals[0]
    for s0, e0 in intervals[1:]:
        if s0 > cur_e:
            busy += cur_e - cur_s
            gaps.append(s0 - cur_e)
            cur_s, cur_e = s0, e0
        else:
            cur_e = max(cur_e, e0)
    busy += cur_e - cur_s
    span = cur_e - intervals[0][0]  # the last merged interval ends with the latest kernel
    per = 1e3 * steps
    return {
        "span_ms_per_step": round(span / per, 3), "busy_ms_per_step": round(busy / per, 3),
        "idle_ms_per_step": round((span - busy) / per, 3), "kernels_per_step": round(len(intervals) / steps, 1),
        "gaps_over_us": {str(t): {"per_step": round(sum(1 for g in gaps if g > t) / steps, 1),
                                  "idle_ms_per_step": round(sum(g for g in gaps if g > t) / per, 3)}
                         for t in (1, 5, 50)},
    }


def profile(prepared, steps: int, prepared_device: torch.device, top_n: int = 30, shapes: bool = False) -> dict:
    from torch.profiler import ProfilerActivity, profile as torch_profile

    timing.synchronize(prepared_device)
    with torch_profile(activities=[ProfilerActivity.CUDA, ProfilerActivity.CPU], record_shapes=shapes) as prof:
        for _ in range(steps):
            prepared.step()
            prepared.reset()
        timing.synchronize(prepared_device)
    by_kind: dict[str, float] = defaultdict(float)
    by_name: dict[str, list] = defaultdict(lambda: [0.0, 0])
    intervals = []
    for evt in prof.events():
        if evt.device_type != torch.autograd.DeviceType.CUDA or evt.name.startswith("## "):
            continue  # "## Call CompiledFxGraph ... ##": a range over kernels already counted, not a kernel
        us = evt.device_time_total if hasattr(evt, "device_time_total") else evt.cuda_time_total
        tr = getattr(evt, "time_range", None)
        if tr is not None and tr.end > tr.start:
            intervals.append((tr.start, tr.end))
        by_kind[kind_of(evt.name)] += us
        by_name[evt.name][0] += us
        by_name[evt.name][1] += 1
    top = sorted(by_name.items(), key=lambda kv: -kv[1][0])[:top_n]
    ops = []  # operators (aten, custom ops, compiled graphs) by the CUDA time of the kernels they launch themselves
    for avg in prof.key_averages():
        us = _self_device_us(avg)
        if us > 0:
            ops.append((avg.key, us, avg.count))
    ops.sort(key=lambda o: -o[1])
    by_shape = []  # the same, split by input shapes (record_shapes): which call sites a kernel's time comes from
    if shapes:
        for avg in prof.key_averages(group_by_input_shape=True):
            us = _self_device_us(avg)
            if us > 0 and avg.input_shapes:
                by_shape.append((avg.key, str(avg.input_shapes)[:200], us, avg.count))
        by_shape.sort(key=lambda o: -o[2])
    return {
        "steps": steps,
        **({"timeline": busy_and_gaps(intervals, steps)} if intervals else {}),
        "kernel_ms_per_step_by_kind": {k: round(v / 1e3 / steps, 3) for k, v in sorted(by_kind.items())},
        "kernel_ms_per_step_total": round(sum(by_kind.values()) / 1e3 / steps, 3),
        "top_kernels": [
            {"name": n[:160], "kind": kind_of(n), "ms_per_step": round(t / 1e3 / steps, 3), "calls_per_step": c / steps}
            for n, (t, c) in top
        ],
        "top_ops_by_self_cuda_time": [
            {"op": k[:120], "ms_per_step": round(us / 1e3 / steps, 3), "calls_per_step": c / steps}
            for k, us, c in ops[:top_n]
        ],
        **({"top_ops_by_input_shape": [
            {"op": k[:120], "shapes": sh, "ms_per_step": round(us / 1e3 / steps, 3), "calls_per_step": c / steps}
            for k, sh, us, c in by_shape[:top_n]
        ]} if shapes else {}),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", default="step", choices=sorted(CASE_IMPLS))
    ap.add_argument("--graph", default="all", help="edge set for layer cases (mesh, grid2mesh, mesh2grid); step: all")
    ap.add_argument("--impls", required=True, help="comma-separated implementation names of the case")
    ap.add_argument("--profile-impls", default="", help="comma-separated subset to profile (default: all of --impls)")
    ap.add_argument("--grid-deg", type=float, default=0.25)
    ap.add_argument("--refinement", type=int, default=6)
    ap.add_argument("--latent", type=int, default=512)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--profile-steps", type=int, default=2)
    ap.add_argument("--top", type=int, default=30, help="how many kernels and operators to list by time")
    ap.add_argument("--shapes", action="store_true", help="also list operators split by their input shapes")
    ap.add_argument("--device", default="cuda", help="cuda; cpu only as a smoke test (no kernel times)")
    ap.add_argument("--compile-backend", default="inductor")
    ap.add_argument("--json", required=True)
    args = ap.parse_args(argv)

    dev = torch.device(args.device)
    ctx = Context.build(args.grid_deg, args.refinement, "hilbert", dev, args.latent, args.compile_backend)
    names = [n for n in args.impls.split(",") if n]
    to_profile = set(n for n in args.profile_impls.split(",") if n) or set(names)
    out = {"gpu": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu", "torch": torch.__version__, "case": args.case,
           "graph": args.graph, "date": time.strftime("%Y-%m-%d"), "records": []}
    for name in names:
        impl = CASE_IMPLS[args.case][name]
        rec = {"impl": name}
        prepared = None
        try:
            base = timing.memory_baseline(dev)
            prepared = impl.setup(ctx, args.graph)
            monitor = ClockMonitor(dev)
            m = timing.measure(prepared.step, device=dev, warmup=args.warmup, repeats=args.repeats,
                               reset=prepared.reset, baseline_bytes=base, monitor=monitor)
            rec["clocks"] = monitor.summary(m.windows)
            rec.update(median_ms=round(m.median_ms, 3), samples_ms=[round(s, 3) for s in m.samples_ms],
                       peak_GiB=round((m.peak_bytes or 0) / 2**30, 2), first_call_s=round(m.first_call_s, 1),
                       info=prepared.info)
            if name in to_profile:
                rec["profile"] = profile(prepared, args.profile_steps, dev, args.top, args.shapes)
        except Exception as err:  # recorded, the next impl still runs
            rec["status"] = "oom" if timing.is_out_of_memory(err) else f"error: {type(err).__name__}: {err}"[:500]
        print(json.dumps({k: v for k, v in rec.items() if k != "profile"}), flush=True)
        if "profile" in rec:
            print(json.dumps(rec["profile"]["kernel_ms_per_step_by_kind"]), flush=True)
        out["records"].append(rec)
        del prepared
        timing.release_case(dev, impl.compiled)
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
