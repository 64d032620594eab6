"""benchmarking: bytes model, timing protocol, baselines against brute force, and a
CPU smoke run of ``weathergnn benchmark`` at toy size (no timings asserted).

The baselines must compute what ours computes, or the speed-ups mean nothing:
every sum-aggregation implementation's gradient ``A^T g`` is checked against a
NumPy loop over edges, the PyG interaction layer and the PyG GraphCast model
against ours with the same weights (float64).
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from weathergnn.benchmarking import baselines, report
from weathergnn.benchmarking.bytes_model import sum_aggregation_bytes
from weathergnn.benchmarking.cases import (
    CASE_IMPLS,
    GRAPH_NAMES,
    LOCALITY_IMPLS,
    LOCALITY_ORDERINGS,
    Context,
    Impl,
)
from weathergnn.benchmarking.suite import SuiteOptions, run_suite
from weathergnn.benchmarking.timing import measure
from weathergnn.cli.main import app
from weathergnn.models.graph_model import EncodeProcessDecode
from weathergnn.models.processors import EdgeBuffers, InteractionLayer
from weathergnn.ops.triton import available as triton_available

from graph_fixtures import random_edge_set, random_graphs

HAVE_PYG = not baselines.pyg_unavailable_reason()
needs_pyg = pytest.mark.skipif(not HAVE_PYG, reason=f"PyG unavailable: {baselines.pyg_unavailable_reason()}")


# ---------------------------------------------------------------- bytes model


@pytest.mark.parametrize(
    "ns, nd, e, ms, anchor_gbps",
    [  # ../shared/anchors/h200_pyg_graphcast025_l6.jsonl, torch index_add rows
        (40_962, 40_962, 327_660, 2.408, 71.8),
        (1_038_240, 40_962, 1_629_780, 12.354, 181.0),
        (40_962, 1_038_240, 3_114_720, 26.849, 84.2),
    ],
)
def test_ideal_bytes_reproduce_the_anchor_bandwidths(ns, nd, e, ms, anchor_gbps):
    nbytes = sum_aggregation_bytes(ns, nd, e, features=512, elem_bytes=2)
    # The file rounds ms to 0.001 and GB/s to 0.1: the anchor must lie in the rounded interval.
    hi = nbytes.ideal / ((ms - 0.0005) * 1e-3) / 1e9
    lo = nbytes.ideal / ((ms + 0.0005) * 1e-3) / 1e9
    assert lo - 0.05 <= anchor_gbps <= hi + 0.05


def test_bytes_model_counts_by_hand():
    # Enumerate what each pass touches on a tiny graph, F = 3 features of s = 4 bytes.
    es = random_edge_set(7, 5, seed=3)
    f, s = 3, 4
    ideal = gathered = 0
    for _pass in ("forward", "backward"):
        reads_in = es.num_src if _pass == "forward" else es.num_dst  # h, or grad_out
        writes_out = es.num_dst if _pass == "forward" else es.num_src  # out, or grad_h
        ideal += (reads_in + writes_out) * f * s + 8 * es.num_edges
        gathered += sum(f * s for _ in range(es.num_edges)) + writes_out * f * s + 8 * es.num_edges
    got = sum_aggregation_bytes(es.num_src, es.num_dst, es.num_edges, f, s)
    assert (got.ideal, got.gathered) == (ideal, gathered)
    with pytest.raises(ValueError, match="num_edges"):
        sum_aggregation_bytes(1, 1, -1, 3, 2)


def test_embedded_anchors_match_the_shared_anchor_files():
    from weathergnn.benchmarking.anchors import _INTERACTION, _STEP, _SUM, anchor_for

    anchors = Path(__file__).resolve().parents[2] / "shared" / "anchors"
    files = {n: anchors / f"h200_pyg_graphcast025_{n}.jsonl" for n in ("l6", "step")}
    if not all(f.is_file() for f in files.values()):
        pytest.skip(f"anchor files not found under {anchors} (../shared absent)")
    rows = []
    for f in files.values():
        for line in f.read_text().splitlines():
            if line.startswith("{"):
                rows.append(json.loads(line))
    graph = {"m2m": "mesh", "g2m": "grid2mesh", "m2g": "mesh2grid"}
    seen = 0
    for r in rows:
        if "impl" in r:
            case = "sum" if r["op"].startswith("aggregate") else "interaction"
            impl = next(i for i, (label, _) in {**_SUM, **_INTERACTION}.items()
                        if label == r["impl"] and (i in _SUM) == (case == "sum"))
            a = anchor_for(case, graph[r["graph"]], impl)
        elif "variant" in r and "step_ms" in r:
            impl = next(i for i, a in _STEP.items() if a.label == r["variant"])
            a = anchor_for("step", "all", impl)
            r = {"ms": r["step_ms"], "peak_GiB": r["peak_GiB"]}
        else:
            continue
        assert (a.ms, a.peak_GiB) == (r["ms"], r["peak_GiB"])
        seen += 1
    assert seen == 29


# ---------------------------------------------------------------- timing


def test_measure_calls_warmup_repeats_and_reset_in_order():
    calls = []
    m = measure(lambda: calls.append("step"), device=torch.device("cpu"), warmup=2, repeats=3,
                reset=lambda: calls.append("reset"))
    assert calls == ["step", "reset"] * 5
    assert len(m.samples_ms) == 3 and m.median_ms == sorted(m.samples_ms)[1]
    assert m.first_call_s >= 0 and m.peak_bytes is None
    with pytest.raises(ValueError, match="repeats"):
        measure(lambda: None, device=torch.device("cpu"), warmup=0, repeats=0)


def test_measure_on_cpu_keeps_host_time_and_takes_no_queued_samples():
    m = measure(lambda: time.sleep(0.002), device=torch.device("cpu"), warmup=0, repeats=3, queued=True)
    assert m.host_ms >= 2.0 and m.queued_median_ms is None and m.queued_samples_ms == []


@pytest.mark.skipif(not torch.cuda.is_available(), reason="queued samples need a CUDA device")
def test_queued_samples_leave_out_the_launch_gaps_of_a_launch_bound_step():
    dev = torch.device("cuda")
    x = torch.zeros(8, device=dev)

    def step():  # 400 one-element kernels: the host's launches take longer than the GPU's work
        for _ in range(400):
            x.add_(1.0)

    m = measure(step, device=dev, warmup=2, repeats=5, queued=True)
    assert m.queued_median_ms is not None and len(m.queued_samples_ms) >= 3
    assert m.host_ms > 0.5 * m.median_ms  # launch bound: the events mostly time the host
    assert m.queued_median_ms < 0.8 * m.median_ms
    short = measure(step, device=dev, warmup=0, repeats=2, queued=True, max_spin_ms=1e-3)
    assert short.queued_median_ms is None and "would exceed" in short.queued_note


def test_queued_speedups_and_columns_in_the_report():
    rows = (("ours-triton", 0.4, 0.25), ("cusparse-csr-fp32", 0.8, 0.6), ("pyg-scatter", 2.0, None))
    recs = [dict(case="sum", op="sum", graph="mesh", ordering="hilbert", impl=name, status="ok", ms=ms,
                 queued_ms=q, host_ms=0.1) for name, ms, q in rows]
    report.add_speedups(recs)
    ours = recs[0]
    assert ours["speedup_vs"] == pytest.approx({"cusparse-csr-fp32": 2.0, "pyg-scatter": 5.0})
    assert ours["queued_speedup_vs"] == pytest.approx({"cusparse-csr-fp32": 2.4})
    header = {"device_name": "x", "date": "d", "options": {"grid_deg": 1, "refinement": 1, "latent": 4, "repeats": 3}}
    table = report.format_tables(header, recs)
    assert "| queued ms | host ms |" in table and "| 0.400 | 0.250 | 0.100 |" in table


def test_without_gluon_turns_the_gluon_kernels_off_only_inside_set_up_and_each_step():
    from weathergnn.benchmarking.cases import Prepared, _without_gluon
    from weathergnn.ops.triton import edge_linear

    seen = []

    def inner(ctx, graph):
        seen.append(edge_linear.GLUON)
        return Prepared(lambda: seen.append(edge_linear.GLUON), lambda: None)

    prepared = _without_gluon(inner)(None, "mesh")
    assert edge_linear.GLUON is True
    prepared.step()
    prepared.step()
    assert seen == [False, False, False] and edge_linear.GLUON is True and prepared.info["gluon_kernels"] is False


@pytest.mark.parametrize("wrapper, module, flag, info", [
    ("_split_node", "weathergnn.ops.interaction_edge", "ONE_NODE", "interaction_layer"),
    ("_weight_copies", "weathergnn.ops.triton.edge_linear_gluon", "WEIGHT_IN_PLACE", "gluon_weights"),
])
def test_flag_wrappers_run_set_up_and_each_step_with_their_switch_off(wrapper, module, flag, info):
    from weathergnn.benchmarking import cases
    from weathergnn.benchmarking.cases import Prepared

    mod = pytest.importorskip(module, reason=f"{module} does not import here")
    seen = []

    def inner(ctx, graph):
        seen.append(getattr(mod, flag))
        return Prepared(lambda: seen.append(getattr(mod, flag)), lambda: None)

    prepared = getattr(cases, wrapper)(inner)(None, "mesh")
    prepared.step()
    assert seen == [False, False] and getattr(mod, flag) is True
    assert info in prepared.info


def test_cuda_graphed_case_needs_a_cuda_device():
    from weathergnn.benchmarking.cases import CaseSkipped, Prepared, _cuda_graphed

    calls = []
    setup = _cuda_graphed(lambda ctx, graph: calls.append(graph) or Prepared(lambda: None, lambda: None))
    ctx = Context(random_graphs(seed=1), torch.device("cpu"), latent=4, compile_backend="eager")
    with pytest.raises(CaseSkipped, match="CUDA graphs need a CUDA device"):
        setup(ctx, "mesh")
    assert calls == []  # nothing set up


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device")
def test_cuda_graphed_interaction_replays_give_the_eager_gradients():
    """The captured interaction case writes, on every replay, the gradients one eager step gives."""
    from weathergnn.benchmarking.cases import _cuda_graphed, _ours_interaction

    ctx = Context(random_graphs(seed=2), torch.device("cuda"), latent=64, compile_backend="eager",
                  dtype=torch.float32)
    backend = "triton" if triton_available("cuda") else "torch"
    setup = _ours_interaction(backend, False)
    torch.manual_seed(0)
    eager = setup(ctx, "grid2mesh")
    eager.step()
    want = {k: eager.tensors[k].grad.clone() for k in ("h_src", "h_dst", "e")}
    torch.manual_seed(0)
    graphed = _cuda_graphed(setup)(ctx, "grid2mesh")
    assert "cuda_graph" in graphed.info
    for _ in range(2):  # replays overwrite the gradients: the same after each
        graphed.step()
        graphed.reset()
        torch.cuda.synchronize()
        for k, g in want.items():
            torch.testing.assert_close(graphed.tensors[k].grad, g, rtol=1e-5, atol=1e-5, msg=k)


# ---------------------------------------------------------------- baselines vs brute force


def _adjoint_loop(es, g: np.ndarray) -> np.ndarray:
    """grad_h = A^T g by a loop over edges: grad_h[src[e]] += g[dst[e]]. g [Nd, F] -> [Ns, F]."""
    out = np.zeros((es.num_src, g.shape[1]))
    for s, d in zip(es.src.tolist(), es.dst.tolist()):
        out[s] += g[d]
    return out


@pytest.mark.parametrize("graph", GRAPH_NAMES)
def test_every_sum_implementation_has_gradient_a_transpose_g(graph):
    graphs = random_graphs(seed=4)
    ctx64 = Context(graphs, torch.device("cpu"), latent=3, compile_backend="eager", dtype=torch.float64)
    ctx32 = Context(graphs, torch.device("cpu"), latent=3, compile_backend="eager", dtype=torch.float32)
    es = ctx64.edge_set(graph)
    checked = []
    for name, impl in CASE_IMPLS["sum"].items():
        if name.startswith("pyg") and not HAVE_PYG:
            continue
        ctx = ctx64
        if "triton" in name:  # float32 kernels; on CPU only under TRITON_INTERPRET=1 (tests/conftest.py)
            if not triton_available("cpu"):
                continue
            ctx = ctx32
        torch.manual_seed(0)
        p = impl.setup(ctx, graph)
        p.step()  # forward + backward(g)
        h, g = p.tensors["h"], p.tensors["g"]
        want = _adjoint_loop(es, g.detach().reshape(es.num_dst, -1).double().numpy())
        tol = 1e-5 if h.dtype == torch.float32 else 1e-12
        np.testing.assert_allclose(h.grad.reshape(es.num_src, -1).double().numpy(), want, rtol=tol, atol=tol,
                                   err_msg=f"{name} on {graph}")
        p.reset()
        assert h.grad is None
        checked.append(name)
        if impl.compiled:
            torch._dynamo.reset()
    assert {"ours-torch", "torch-index_add", "torch-segment_reduce", "cusparse-csr-fp32",
            "cusparse-csr-fp32-pretransposed"} <= set(checked)


@needs_pyg
def test_pyg_interaction_layer_equals_ours_with_the_same_weights():
    torch.manual_seed(0)
    es = random_edge_set(9, 6, seed=5)
    latent = 4
    pyg = baselines.pyg_interaction_layer(latent).double()
    ours = InteractionLayer(latent, backend="torch").double()
    ours.edge_mlp.load_from_concat(pyg.edge_mlp)  # first layer split into [e, h_src, h_dst] parts
    ours.node_mlp.load_state_dict(pyg.node_mlp.state_dict())
    h_src = torch.randn(2, es.num_src, latent, dtype=torch.float64)
    h_dst = torch.randn(2, es.num_dst, latent, dtype=torch.float64)
    e = torch.randn(es.num_edges, latent, dtype=torch.float64)
    h1, e1 = pyg(h_src, h_dst, e, torch.stack([es.src, es.dst]), (es.num_src, es.num_dst))
    h2, e2 = ours(h_src, h_dst, e, EdgeBuffers(es).double())
    torch.testing.assert_close(h1, h2, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(e1, e2, rtol=1e-12, atol=1e-12)


@needs_pyg
def test_pyg_graphcast_model_equals_ours_with_the_same_weights():
    torch.manual_seed(0)
    graphs = random_graphs(seed=6)
    latent, layers, c_in, c_out = 4, 2, 5, 3
    pyg = baselines.pyg_graphcast_model(graphs, c_in, c_out, latent, layers).double()
    ours = EncodeProcessDecode(graphs, c_in, c_out, latent, layers, processor="interaction",
                               backend="torch").double()
    assert sum(p.numel() for p in pyg.parameters()) == sum(p.numel() for p in ours.parameters())
    with torch.no_grad():
        for mine, theirs in [(ours.grid_embed, pyg.grid_embed), (ours.mesh_embed, pyg.mesh_embed),
                             (ours.g2m_edge_embed, pyg.edge_embed["grid2mesh"]),
                             (ours.m2g_edge_embed, pyg.edge_embed["mesh2grid"]),
                             (ours.mesh_edge_embed, pyg.edge_embed["mesh"]),
                             (ours.grid_update, pyg.grid_update), (ours.output, pyg.output)]:
            mine.load_state_dict(theirs.state_dict())
        for mine, theirs in [(ours.encoder, pyg.encoder), (ours.decoder, pyg.decoder),
                             *zip(ours.processor.layers, pyg.processor)]:
            mine.edge_mlp.load_from_concat(theirs.edge_mlp)
            mine.node_mlp.load_state_dict(theirs.node_mlp.state_dict())
    x = torch.randn(2, graphs.num_grid_nodes, c_in, dtype=torch.float64, requires_grad=True)
    y_pyg = pyg(x)  # grad enabled: the checkpointed path
    y_ours = ours(x)
    torch.testing.assert_close(y_pyg, y_ours, rtol=1e-10, atol=1e-10)
    (g_pyg,) = torch.autograd.grad(y_pyg.sum(), x)
    (g_ours,) = torch.autograd.grad(y_ours.sum(), x)
    torch.testing.assert_close(g_pyg, g_ours, rtol=1e-10, atol=1e-10)


# ---------------------------------------------------------------- report


def test_speedups_are_relative_to_ours_triton_else_ours_torch():
    def rec(impl, ms, status="ok", graph="mesh"):
        return {"case": "sum", "op": "sum", "graph": graph, "ordering": "hilbert", "impl": impl, "ms": ms,
                "status": status}

    records = [rec("ours-torch", 4.0), rec("ours-triton", 1.0), rec("pyg", 3.0),
               rec("ours-torch", 2.0, graph="grid2mesh"), rec("ours-triton", None, "skipped: x", "grid2mesh"),
               rec("pyg", 6.0, graph="grid2mesh")]
    report.add_speedups(records)
    assert [r["ours_speedup"] for r in records] == [4.0, 1.0, 3.0, 1.0, None, 3.0]
    assert records[1]["speedup_vs"] == {"ours-torch": 4.0, "pyg": 3.0}
    assert records[3]["reference_impl"] == "ours-torch"


# ---------------------------------------------------------------- the suite end to end (toy size, CPU)

TOY = ["--device", "cpu", "--grid-deg", "30", "--refinement", "1", "--latent", "8", "--repeats", "1",
       "--warmup", "1", "--compile-backend", "eager"]
TOY_IMPLS = ("ours-torch,ours-torch-decoderloss,ours-triton,ours-fused-torch,torch-index_add,torch-index_add-compiled,"
             "torch-segment_reduce,pyg-scatter,pyg,cusparse-csr-fp32")


@pytest.fixture
def one_thread():
    """Toy-size ops on 2 busy cores spend ~100 ms per op in thread hand-offs; 1 thread runs the suite in seconds."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_cli_benchmark_toy_run_writes_json_csv_table_and_plot(tmp_path, monkeypatch, one_thread):
    monkeypatch.setenv("TRITON_INTERPRET", "0")  # the interpreter takes minutes here: triton is skipped
    result = CliRunner().invoke(app, ["benchmark", *TOY, "--impls", TOY_IMPLS, "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    (js,) = tmp_path.glob("benchmark_cpu_*.json")
    data = json.loads(js.read_text())
    header, records = data["header"], data["records"]
    for key in ("date", "torch", "cuda", "triton", "torch_geometric", "git_commit", "copy_GBps", "bytes_model",
                "graphs", "options"):
        assert key in header, key
    assert header["copy_GBps"] > 0 and header["options"]["grid_deg"] == 30.0

    chosen = set(TOY_IMPLS.split(","))
    want = set()
    for case in ("sum", "interaction", "fused"):
        want |= {(case, case, g, "hilbert", i) for g in GRAPH_NAMES for i in CASE_IMPLS[case] if i in chosen}
    want |= {("step", "step", "all", "hilbert", i) for i in CASE_IMPLS["step"] if i in chosen}
    want |= {("locality", op, g, o, i) for o in LOCALITY_ORDERINGS for op, i in LOCALITY_IMPLS
             for g in GRAPH_NAMES if i in chosen}
    got = [(r["case"], r["op"], r["graph"], r["ordering"], r["impl"]) for r in records]
    assert sorted(got) == sorted(want)  # one record each

    for r in records:
        if "triton" in r["impl"]:
            assert r["status"].startswith("skipped: ops backend 'triton'"), r
        elif r["impl"].startswith("pyg") and not HAVE_PYG:
            assert r["status"].startswith("skipped: torch_geometric"), r
        else:
            assert r["status"] == "ok", r
            assert len(r["samples_ms"]) == (2 if r["case"] == "step" else 1) and r["ms"] > 0  # step: 2 x repeats
    sums = [r for r in records if r["case"] == "sum" and r["status"] == "ok"]
    assert all(r["ideal_GBps"] > 0 and r["gathered_bytes"] > r["ideal_bytes"] for r in sums)
    assert all(r["ours_speedup"] is not None for r in sums)  # vs ours-torch: triton skipped on CPU

    with open(js.with_suffix(".csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["case"], r["graph"], r["impl"], r["status"]) for r in rows] == \
        [(r["case"], r["graph"], r["impl"], r["status"]) for r in records]
    assert js.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = js.with_suffix(".md").read_text()
    assert "| sum | mesh2grid | torch-segment_reduce |" in table and "Locality" in table


def test_time_budget_skips_measurements_but_writes_results(tmp_path):
    res = run_suite(SuiteOptions(cases=["sum"], device="cpu", grid_deg=30, refinement=1, latent=8,
                                 out=tmp_path, impls=["torch-index_add"], max_minutes=0.0, log=lambda m: None))
    assert [r["status"] for r in res.records] == ["skipped: time budget of 0.0 min (--max-minutes) used up"] * 3
    assert all(p.exists() for p in res.paths.values())


def test_graphs_option_limits_the_edge_sets(tmp_path):
    res = run_suite(SuiteOptions(cases=["sum", "locality"], device="cpu", grid_deg=30, refinement=1, latent=8,
                                 out=tmp_path, impls=["ours-torch"], max_minutes=0.0, graphs=["mesh2grid"],
                                 log=lambda m: None))
    assert {r["graph"] for r in res.records} == {"mesh2grid"}
    assert len(res.records) == 1 + 2 * len(LOCALITY_ORDERINGS)  # sum; locality sum and fused per ordering


def test_oom_and_errors_are_recorded_and_the_suite_goes_on(tmp_path, monkeypatch, one_thread):
    def oom(ctx, graph):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 29.18 GiB.")

    def broken(ctx, graph):
        raise ValueError("bad wiring")

    monkeypatch.setitem(CASE_IMPLS["sum"], "fake-oom", Impl("fake-oom", oom))
    monkeypatch.setitem(CASE_IMPLS["sum"], "fake-error", Impl("fake-error", broken))
    res = run_suite(SuiteOptions(cases=["sum"], device="cpu", grid_deg=30, refinement=1, latent=8, repeats=1,
                                 warmup=0, out=tmp_path, impls=["fake-*", "torch-index_add"], log=lambda m: None))
    status = {(r["graph"], r["impl"]): r["status"] for r in res.records}
    for g in GRAPH_NAMES:
        assert status[(g, "fake-oom")] == "oom"
        assert status[(g, "fake-error")] == "error: ValueError: bad wiring"
        assert status[(g, "torch-index_add")] == "ok"


@pytest.mark.parametrize(
    "kwargs, match",
    [({"cases": ["sum", "nope"]}, "--cases"), ({"impls": ["zzz*"]}, "--impls"),
     ({"compile_backend": "tvm"}, "--compile-backend"), ({"repeats": 0}, "--repeats"),
     ({"graphs": ["mesh", "moon"]}, "--graphs")],
)
def test_bad_options_name_the_option(kwargs, match, tmp_path):
    with pytest.raises(ValueError, match=match):
        run_suite(SuiteOptions(device="cpu", out=tmp_path, **kwargs))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_cuda_device_without_cuda_fails_clearly(tmp_path):
    result = CliRunner().invoke(app, ["benchmark", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "--device cuda: no CUDA device" in result.output


def test_default_step_runs_the_graphcast_configuration():
    """The suite's default GEMM-fused steps are era5-0.25deg-graphcast's chunks and processor checkpointing,
    with and without the decoder-chunk loss backward (the configuration's ``training.decoder_loss_backward``), and
    with it captured as a CUDA graph (``training.cuda_graph``)."""
    import re

    from weathergnn.config import load_config

    cfg = load_config("era5-0.25deg-graphcast")
    model = cfg.model
    names = [i.name for i in CASE_IMPLS["step"].values() if i.default and "fusedgemm" in i.name]
    assert len(names) == 3 and names[1:] == [f"{names[0]}-decoderloss", f"{names[0]}-decoderloss-cudagraph"], names
    enc, dec, n = map(int, re.fullmatch(r"ours-triton-chunked-(\d+)-(\d+)-ckpt(\d+)-blocks-compiled-fusedgemm",
                                        names[0]).groups())
    assert ((enc, dec), n) == (tuple(model.mapper_chunks), model.checkpoint_processor)
    assert model.compile and model.edge_gemm == "auto" and model.checkpoint
    assert cfg.training.decoder_loss_backward and cfg.training.cuda_graph
