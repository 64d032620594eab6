"""Quick GPU probe of the fused kernels at 0.25 deg / refinement 6 (tuning aid).

Times forward + backward (CUDA events, median) of the aggregation, the
interaction layer, the fused layer and a full training step, our Triton
backend next to plain torch, and sweeps the block sizes of the CSC kernel.
The full, reported comparison with PyG and cuSPARSE is ``weathergnn benchmark``.

    python benchmarks/ops_probe.py --json OUT.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch


def timeit(fn, warmup=3, repeats=10):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        torch.cuda.synchronize()
        times.append(a.elapsed_time(b))
    return statistics.median(times)


def peak(fn):
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    fn()
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - base) / 2**30


def sweep_rows(graphs, dev, rec, row):
    """LayerNorm(+residual) fwd/bwd and gather-add-SiLU fwd/bwd on the mesh2grid edge rows (3.1 M x 512 bf16)."""
    from weathergnn.models.processors import EdgeBuffers
    from weathergnn.ops import custom_ops as C
    from weathergnn.ops.triton import gather_add_silu as gmod
    from weathergnn.ops.triton import layer_norm_residual as lmod

    edges = EdgeBuffers(graphs.mesh2grid).to(dev)
    E, L, bf = edges.num_edges, 512, torch.bfloat16
    y = torch.randn(E, L, device=dev, dtype=bf)
    res = torch.randn(E, L, device=dev, dtype=bf)
    w = torch.randn(L, device=dev)
    b = torch.randn(L, device=dev)
    g = torch.randn(E, L, device=dev, dtype=bf)
    _, mean, rstd = C.layer_norm_residual(y, res, w, b, 1e-5)
    for cfg in [None, (8, 4, 256), (4, 4, 128), (2, 4, 64), (4, 8, 128), (2, 2, 64), (1, 4, 32), (8, 8, 256), (2, 4, 256), (4, 4, 512)]:
        lmod.TUNE = cfg
        try:
            fwd = timeit(lambda: C.layer_norm_residual(y, res, w, b, 1e-5))
            bwd = timeit(lambda: C.layer_norm_residual_backward(g, y, w, mean, rstd, None, None, False))
        except Exception as err:  # noqa: BLE001
            fwd = bwd = str(err)[:80]
        row(case="ln-sweep", cfg=cfg, fwd_ms=fwd, bwd_ms=bwd)
    lmod.TUNE = None
    del y, res, g
    x = torch.randn(1, E, L, device=dev, dtype=bf)
    ps = torch.randn(1, edges.num_src, L, device=dev, dtype=bf)
    pd = torch.randn(1, edges.num_dst, L, device=dev, dtype=bf)
    ga = torch.randn(1, E, L, device=dev, dtype=bf)
    for cfg in [None, (8, 512, 4), (4, 512, 4), (16, 512, 8), (32, 128, 4), (8, 256, 4), (2, 512, 4), (16, 256, 8)]:
        gmod.TUNE = cfg
        try:
            fwd = timeit(lambda: gmod.gather_add_silu(x, ps, pd, edges.src, edges.dst))
            bwd = timeit(lambda: gmod.gather_add_silu_backward(ga, x, ps, pd, edges.src, edges.dst))
        except Exception as err:  # noqa: BLE001
            fwd = bwd = str(err)[:80]
        row(case="gas-sweep", cfg=cfg, fwd_ms=fwd, bwd_ms=bwd)
    gmod.TUNE = None


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--json", required=True)
    p.add_argument("--refinement", type=int, default=6)
    p.add_argument("--deg", type=float, default=0.25)
    p.add_argument("--skip-step", action="store_true")
    p.add_argument("--sweep", action="store_true", help="block-size sweep of the CSC kernel")
    p.add_argument("--only-sum", action="store_true", help="aggregation cases only")
    p.add_argument("--only-graph", default=None, help="m2m, g2m or m2g")
    p.add_argument("--sweep-rows", action="store_true", help="sweep LayerNorm and gather-add-SiLU kernels on mesh2grid rows, then exit")
    p.add_argument("--only-step", action="store_true", help="training step only, with a profile")
    p.add_argument("--compile", action="store_true", help="also time torch.compile'd layers and step")
    args = p.parse_args()
    from weathergnn.graphs.build import build_graphs
    from weathergnn.models.processors import EdgeBuffers, FusedLayer, InteractionLayer
    from weathergnn.ops import dispatch
    from weathergnn.ops.triton import csr_sum as csr_mod

    dev = torch.device("cuda")
    rec = {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__, "rows": []}
    lat = np.arange(-90, 90 + 1e-9, args.deg)
    lon = np.arange(0, 360, args.deg)
    t0 = time.time()
    graphs = build_graphs(lat, lon, args.refinement)
    rec["build_s"] = time.time() - t0
    L = 512
    bf = torch.bfloat16

    def row(**kw):
        rec["rows"].append(kw)
        print(json.dumps(kw), flush=True)

    if args.sweep_rows:
        sweep_rows(graphs, dev, rec, row)
        with open(args.json, "w") as f:
            json.dump(rec, f, indent=1)
        return
    sets = {} if args.only_step else {"m2m": graphs.mesh, "g2m": graphs.grid2mesh, "m2g": graphs.mesh2grid}
    if args.only_graph:
        sets = {args.only_graph: sets[args.only_graph]}
    for name, es in sets.items():
        edges = EdgeBuffers(es).to(dev)
        h = torch.randn(1, edges.num_src, L, device=dev, dtype=bf, requires_grad=True)
        g = torch.randn(1, edges.num_dst, L, device=dev, dtype=bf)
        for backend in ("triton", "torch"):
            fn = lambda: torch.autograd.grad(dispatch.neighbour_sum(h, edges, None, backend=backend), h, g)
            row(case="sum", graph=name, impl=backend, E=edges.num_edges, ms=timeit(fn), peak_GiB=peak(fn))
        # index_add baseline
        def ia():
            out = torch.zeros(1, edges.num_dst, L, device=dev, dtype=bf).index_add(1, edges.dst, h.index_select(1, edges.src))
            return torch.autograd.grad(out, h, g)
        row(case="sum", graph=name, impl="index_add", ms=timeit(ia))
        # csr fp32 cuSPARSE
        A = torch.sparse_csr_tensor(edges.dst_ptr, edges.src, torch.ones(edges.num_edges, device=dev), (edges.num_dst, edges.num_src))
        h32 = h.detach().float()[0].requires_grad_()
        g32 = g.float()[0]
        row(case="sum", graph=name, impl="cusparse", ms=timeit(lambda: torch.autograd.grad(torch.sparse.mm(A, h32), h32, g32)))
        # forward only / backward only of ours
        row(case="sum-fwd", graph=name, impl="triton", ms=timeit(lambda: dispatch.neighbour_sum(h.detach(), edges, None, backend="triton")))
        # block sweep on the forward kernel
        cfgs = [] if not args.sweep else [(4, 4, 256, 4), (4, 4, 256, 4, 1), (4, 4, 256, 4, 3), (4, 4, 256, 4, 4),
                (8, 4, 128, 4), (4, 8, 256, 8), (8, 2, 256, 4), (4, 2, 512, 4, 3), (2, 2, 512, 2, 3), (8, 1, 512, 4, 3),
                (4, 4, 256, 8, 2), (16, 2, 128, 4)]
        if args.sweep and name == "m2m":
            cfgs = cfgs[:4]
        for cfg in cfgs:
            csr_mod.TUNE = cfg
            try:
                ms = timeit(lambda: dispatch.neighbour_sum(h.detach(), edges, None, backend="triton"))
            except Exception as err:  # noqa: BLE001
                ms = str(err)[:80]
            row(case="sum-fwd-sweep", graph=name, cfg=list(cfg), ms=ms)
            try:
                gt = g.detach()
                ms = timeit(lambda: torch.ops.weathergnn.csr_sum(gt, edges.src_ptr, edges.src_dst, edges.src_perm, None))
            except Exception as err:  # noqa: BLE001
                ms = str(err)[:80]
            row(case="sum-bwd-sweep", graph=name, cfg=list(cfg), ms=ms)
            try:
                msg = torch.randn(1, edges.num_edges, L, device=dev, dtype=bf)
                ms = timeit(lambda: torch.ops.weathergnn.csr_sum(msg, edges.dst_ptr, None, None, None))
                ms2 = timeit(lambda: torch.ops.weathergnn.csr_sum(msg, edges.src_ptr, edges.src_perm, None, None))
                del msg
            except Exception as err:  # noqa: BLE001
                ms = ms2 = str(err)[:80]
            row(case="segsum-sweep", graph=name, cfg=list(cfg), ms=ms, ms_src=ms2)
        csr_mod.TUNE = None
        del h, g, A, h32

        if args.only_sum:
            continue
        # interaction layer
        variants = [("triton", False), ("torch", False)] + ([("triton", True), ("torch", True)] if args.compile else [])
        for backend, comp in variants:
            torch.manual_seed(0)
            layer = InteractionLayer(L, backend=backend).to(dev, bf)
            run_layer = torch.compile(layer) if comp else layer
            hs = torch.randn(1, edges.num_src, L, device=dev, dtype=bf, requires_grad=True)
            hd = torch.randn(1, edges.num_dst, L, device=dev, dtype=bf, requires_grad=True)
            e = torch.randn(1, edges.num_edges, L, device=dev, dtype=bf, requires_grad=True)
            gh, ge = torch.randn_like(hd), torch.randn_like(e)

            def step():
                hn, en = run_layer(hs, hd, e, edges)
                torch.autograd.backward((hn, en), (gh, ge))

            try:
                t0 = time.time()
                step()
                first = time.time() - t0
                row(case="interaction", graph=name, impl=backend + ("-compiled" if comp else ""), ms=timeit(step, 2, 5), peak_GiB=peak(step), first_s=first)
            except torch.cuda.OutOfMemoryError:
                row(case="interaction", graph=name, impl=backend, ms="oom")
            if backend == "triton" and name in ("m2m", "m2g"):
                from torch.profiler import ProfilerActivity, profile

                with profile(activities=[ProfilerActivity.CUDA]) as prof:
                    step()
                    torch.cuda.synchronize()
                table = prof.key_averages().table(sort_by="cuda_time_total", row_limit=22, max_name_column_width=70)
                print(table, flush=True)
                rec.setdefault("profiles", {})[name + ("-compiled" if comp else "")] = table
            del layer, run_layer, hs, hd, e, gh, ge
            torch._dynamo.reset()
            torch.cuda.empty_cache()
        # fused layer
        for backend, comp in variants:
            layer = FusedLayer(L, backend=backend).to(dev, bf)
            run_layer = torch.compile(layer) if comp else layer
            hs = torch.randn(1, edges.num_src, L, device=dev, dtype=bf, requires_grad=True)
            hd = torch.randn(1, edges.num_dst, L, device=dev, dtype=bf, requires_grad=True)
            gh = torch.randn_like(hd)

            def step():
                with torch.autocast("cuda", dtype=bf):
                    out = run_layer(hs, edges, hd)
                out.backward(gh)

            row(case="fused", graph=name, impl=backend + ("-compiled" if comp else ""), ms=timeit(step, 2, 5), peak_GiB=peak(step))
            del layer, run_layer, hs, hd
            torch._dynamo.reset()
            torch.cuda.empty_cache()
        del edges
    if not args.skip_step and not args.only_sum:
        from weathergnn.models.graph_model import EncodeProcessDecode

        step_variants = [("triton", False, 8), ("triton", False, 1), ("torch", False, 8)]
        if args.compile:
            step_variants.append(("triton", True, 8))
        for backend, comp, chunks in step_variants:
            torch.cuda.empty_cache()
            model = EncodeProcessDecode(graphs, 2 * 84 + 10, 84, latent=L, layers=16, checkpoint=True, backend=backend, mapper_chunks=chunks).to(dev)
            opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
            run_model = torch.compile(model) if comp else model
            x = torch.randn(1, graphs.num_grid_nodes, 2 * 84 + 10, device=dev)
            y = torch.randn(1, graphs.num_grid_nodes, 84, device=dev)
            w = graphs.latitude_weights.to(dev)[None, :, None]

            def step():
                with torch.autocast("cuda", dtype=bf):
                    out = run_model(x)
                loss = ((out.float() - y) ** 2 * w).mean()
                loss.backward()
                opt.step()
                opt.zero_grad(set_to_none=True)

            try:
                t0 = time.time()
                step()
                first = time.time() - t0
                row(case="step", impl=backend + ("-compiled" if comp else ""), mapper_chunks=chunks, ms=timeit(step, 2, 5), peak_GiB=peak(step), first_s=first)
            except torch.cuda.OutOfMemoryError as err:
                row(case="step", impl=backend, ms="oom", err=str(err)[:200])
            if args.only_step and not comp and chunks == 8 and backend == "triton":
                from torch.profiler import ProfilerActivity, profile

                with profile(activities=[ProfilerActivity.CUDA]) as prof:
                    step()
                    torch.cuda.synchronize()
                table = prof.key_averages().table(sort_by="cuda_time_total", row_limit=40, max_name_column_width=90)
                rec.setdefault("profiles", {})["step-" + backend] = table
                print(table, flush=True)

            del model, run_model, opt, x, y
            torch._dynamo.reset()
    with open(args.json, "w") as f:
        json.dump(rec, f, indent=1)


if __name__ == "__main__":
    main()
