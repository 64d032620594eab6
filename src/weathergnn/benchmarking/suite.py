"""Run the benchmark suite: build graphs, measure every (case, graph, impl), write results.

Order: copy bandwidth; graphs of the grid (hilbert ordering); the cases in
:data:`~weathergnn.benchmarking.cases.CASES` order (sum, interaction, fused,
step, locality), each over the edge sets mesh, grid2mesh, mesh2grid and the
selected implementations. Every measurement starts from a fresh state (the
previous case's tensors dropped, ``torch.cuda.empty_cache()``,
``torch._dynamo.reset()`` after compiled ones) and its peak memory is counted
from what is allocated before it is built (the shared device copy of the
graph's index arrays is part of that baseline). A measurement that cannot run
is recorded, not fatal: ``skipped: <reason>`` (backend or PyG unavailable, time
budget spent), ``oom`` (``torch.cuda.OutOfMemoryError``), ``error: <message>``
(anything else; traceback on stderr). Results are rewritten after every record.
"""

from __future__ import annotations

import fnmatch
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from weathergnn.benchmarking import report
from weathergnn.benchmarking.anchors import ANCHOR_CONFIG, ANCHOR_COPY_GBPS, ANCHOR_SOURCE, anchor_for
from weathergnn.benchmarking.bytes_model import BYTES_MODEL
from weathergnn.benchmarking.cases import (
    CASE_IMPLS,
    CASES,
    GRAPH_NAMES,
    LOCALITY_IMPLS,
    LOCALITY_ORDERINGS,
    CaseSkipped,
    Context,
    Impl,
)
from weathergnn.benchmarking.clocks import ClockMonitor
from weathergnn.benchmarking.timing import copy_bandwidth, is_out_of_memory, measure, memory_baseline, release_case

__all__ = ["SuiteOptions", "SuiteResult", "all_impl_names", "run_suite"]

COMPILE_BACKENDS = ("auto", "inductor", "aot_eager", "eager")


def all_impl_names() -> list[str]:
    """Every implementation name of every case (for ``--impls``)."""
    return sorted({name for impls in CASE_IMPLS.values() for name in impls})


@dataclass
class SuiteOptions:
    """Options of :func:`run_suite` (the ``weathergnn benchmark`` flags).

    Attributes:
        cases: subset of :data:`CASES`.
        grid_deg: regular lat-lon grid spacing, degrees (0.25: 721 x 1440).
        refinement: finest icosahedral refinement of the multimesh.
        latent: feature width of the aggregation and layer cases and the
            latent of the training-step models.
        repeats: timed samples per measurement (the training step uses twice as many: its samples
            spread by up to 10% within a run, e.g. 211-234 ms at 4fbad6d).
        warmup: untimed calls first (the training step uses at most 2, at least 1).
        device: ``cuda``, ``cuda:N`` or ``cpu``.
        out: results directory.
        impls: ``fnmatch`` patterns of implementation names; ``None`` = the
            default set of every case (non-default ones, e.g.
            ``ours-triton-compiled``, only when named).
        compile_backend: ``torch.compile`` backend; ``auto`` = ``inductor`` on
            CUDA, ``aot_eager`` on CPU (inductor's C++ compile takes minutes
            there; CPU runs only check that the compiled paths trace).
        max_minutes: wall-clock budget; measurements not started by then are
            recorded as skipped (results are written either way). None = no limit.
        graphs: the edge sets (subset of ``mesh``, ``grid2mesh``, ``mesh2grid``) the per-edge-set cases
            (sum, interaction, fused, locality) run on; the training step runs on all of them regardless.
    """

    cases: Sequence[str] = CASES
    grid_deg: float = 0.25
    refinement: int = 6
    latent: int = 512
    repeats: int = 10
    warmup: int = 3
    device: str = "cuda"
    out: Path = Path("benchmarks/results")
    impls: Sequence[str] | None = None
    compile_backend: str = "auto"
    max_minutes: float | None = 7.5
    graphs: Sequence[str] = GRAPH_NAMES
    log: Callable[[str], None] = field(default=lambda msg: print(msg, flush=True), repr=False)

    def validate(self) -> torch.device:
        """Check the options; return the device.

        Raises:
            ValueError: naming the option at fault.
        """
        unknown = [c for c in self.cases if c not in CASES]
        if unknown or not self.cases:
            raise ValueError(f"--cases: unknown {unknown or 'empty list'}; expected a subset of {','.join(CASES)}")
        unknown = [g for g in self.graphs if g not in GRAPH_NAMES]
        if unknown or not self.graphs:
            raise ValueError(f"--graphs: unknown {unknown or 'empty list'}; expected a subset of "
                             f"{','.join(GRAPH_NAMES)}")
        if self.refinement < 0 or self.refinement > 9:
            raise ValueError(f"--refinement must be in 0..9, got {self.refinement}")
        if self.latent < 1 or self.repeats < 1 or self.warmup < 0:
            raise ValueError(f"need --latent >= 1, --repeats >= 1, --warmup >= 0 "
                             f"(got {self.latent}, {self.repeats}, {self.warmup})")
        if self.compile_backend not in COMPILE_BACKENDS:
            raise ValueError(f"--compile-backend {self.compile_backend!r}: expected one of {COMPILE_BACKENDS}")
        if self.impls is not None:
            names = all_impl_names()
            dead = [p for p in self.impls if not fnmatch.filter(names, p)]
            if dead:
                raise ValueError(f"--impls: {dead} match no implementation; known: {','.join(names)}")
        device = torch.device(self.device)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"--device {self.device}: no CUDA device is available (use --device cpu)")
        if device.type not in ("cuda", "cpu"):
            raise ValueError(f"--device {self.device}: expected cuda, cuda:N or cpu")
        return device

    def selected(self, impl: Impl) -> bool:
        if self.impls is None:
            return impl.default
        return any(fnmatch.fnmatchcase(impl.name, p) for p in self.impls)


@dataclass
class SuiteResult:
    """What :func:`run_suite` measured and where it wrote it."""

    header: dict
    records: list[dict]
    paths: dict[str, Path]
    table: str


class _Run:
    """State of one suite run: options, device, clock, records, output files."""

    def __init__(self, opts: SuiteOptions, device: torch.device):
        self.opts = opts
        self.device = device
        self.t0 = time.perf_counter()
        self.records: list[dict] = []
        self.compile_backend = opts.compile_backend
        if self.compile_backend == "auto":
            self.compile_backend = "inductor" if device.type == "cuda" else "aot_eager"
        self.header: dict = {}
        self.files: report.ResultFiles | None = None

    def out_of_time(self) -> bool:
        m = self.opts.max_minutes
        return m is not None and time.perf_counter() - self.t0 > 60 * m

    def save(self, csv: bool = False) -> None:
        """Rewrite the JSON (after every record, so a run cut short keeps its results); the CSV when asked."""
        report.write_json(self.files.path("json"), self.header, self.records)
        if csv:
            report.write_csv(self.files.path("csv"), self.records)

    def measure_one(self, ctx: Context, case: str, op: str, graph: str, ordering: str, impl: Impl) -> dict:
        """Set up, time and tear down one implementation; return its record."""
        opts, dev = self.opts, self.device
        rec = _base_record(ctx, case, op, graph, ordering, impl.name, dev)
        step_case = op == "step"
        warmup = max(1, min(opts.warmup, 2)) if step_case else opts.warmup
        repeats = 2 * opts.repeats if step_case else opts.repeats
        rec.update(warmup=warmup, repeats=repeats)
        if self.out_of_time():
            rec["status"] = f"skipped: time budget of {opts.max_minutes} min (--max-minutes) used up"
            return rec
        baseline = memory_baseline(dev)
        torch.manual_seed(0)
        prepared = m = None
        t_case = time.perf_counter()
        try:
            prepared = impl.setup(ctx, graph)
            monitor = ClockMonitor(dev)
            m = measure(prepared.step, device=dev, warmup=warmup, repeats=repeats, reset=prepared.reset,
                        baseline_bytes=baseline, queued=not step_case, monitor=monitor)
            rec["status"] = "ok"
            rec["clocks"] = monitor.summary(m.windows)  # SM clock and power while the samples ran
            if m.queued_windows:
                rec["queued_clocks"] = monitor.summary(m.queued_windows)
        except CaseSkipped as err:
            rec["status"] = f"skipped: {err}"
        except Exception as err:  # recorded, the suite goes on
            if is_out_of_memory(err):
                rec["status"] = "oom"
                rec["error"] = str(err).splitlines()[0][:400]
            else:
                rec["status"] = f"error: {type(err).__name__}: {str(err).splitlines()[0][:300] if str(err) else ''}"
                traceback.print_exc(file=sys.stderr)
        compiled = impl.compiled
        rec["compiled"] = compiled
        if compiled:
            rec["compile_backend"] = self.compile_backend
        if prepared is not None:
            rec.update(prepared.info)
        prepared = None
        failed = rec["status"] == "oom" or rec["status"].startswith("error")
        release_case(dev, compiled, baseline, failed)
        rec["wall_s"] = round(time.perf_counter() - t_case, 2)
        nbytes = rec.pop("bytes", None)  # bytes model of sum aggregation, from the case's info
        if m is not None:
            _fill_timing(rec, m, compiled, nbytes, self.header.get("copy_GBps"))
        if ordering == "hilbert" and _anchor_config(opts):
            a = anchor_for(case, graph, impl.name)
            if a is not None:
                rec.update(anchor=a.label, anchor_ms=a.ms, anchor_peak_GiB=a.peak_GiB, anchor_compile_s=a.compile_s,
                           anchor_num_edges=ANCHOR_CONFIG["num_edges"].get(graph))
        return rec

    def run_case(self, ctx: Context, case: str, op: str, graphs: Sequence[str], ordering: str,
                 impls: Sequence[Impl]) -> None:
        for graph in graphs:
            if impls and graph in GRAPH_NAMES and not self.out_of_time():
                ctx.edges(graph)  # shared device copy, built before any baseline is taken
            for impl in impls:
                rec = self.measure_one(ctx, case, op, graph, ordering, impl)
                self.records.append(rec)
                self.opts.log(_progress_line(rec, time.perf_counter() - self.t0))
                self.save()


def _anchor_config(opts: SuiteOptions) -> bool:
    return (opts.grid_deg == ANCHOR_CONFIG["grid_deg"] and opts.refinement == ANCHOR_CONFIG["refinement"]
            and opts.latent == ANCHOR_CONFIG["latent"])


def _base_record(ctx: Context, case: str, op: str, graph: str, ordering: str, impl: str, dev: torch.device) -> dict:
    rec = {"case": case, "op": op, "graph": graph, "ordering": ordering, "impl": impl, "status": "not run",
           "device": str(dev), "latent": ctx.latent, "batch": 1}
    if graph in GRAPH_NAMES:
        es = ctx.edge_set(graph)
        rec.update(num_src=es.num_src, num_dst=es.num_dst, num_edges=es.num_edges)
    else:
        g = ctx.graphs
        rec.update(num_src=g.num_grid_nodes, num_dst=g.num_mesh_nodes,
                   num_edges=sum(getattr(g, n).num_edges for n in GRAPH_NAMES))
    return rec


def _fill_timing(rec: dict, m, compiled: bool, nbytes: dict | None, copy_GBps: float | None) -> None:
    rec["ms"] = m.median_ms
    rec["samples_ms"] = [round(x, 4) for x in m.samples_ms]
    rec["first_call_s"] = m.first_call_s
    rec["warmup_s"] = m.warmup_s
    rec["compile_s"] = max(m.first_call_s - m.median_ms / 1e3, 0.0) if compiled else None
    rec["peak_GiB"] = None if m.peak_bytes is None else m.peak_bytes / 2**30
    rec["host_ms"] = m.host_ms
    rec["queued_ms"] = m.queued_median_ms
    if m.queued_samples_ms:
        rec["queued_samples_ms"] = [round(x, 4) for x in m.queued_samples_ms]
    if m.queued_note:
        rec["queued_note"] = m.queued_note
    if nbytes:
        sec = m.median_ms / 1e3
        for kind in ("ideal", "gathered"):
            rec[f"{kind}_bytes"] = nbytes[kind]
            rec[f"{kind}_GBps"] = nbytes[kind] / sec / 1e9
            rec[f"{kind}_frac_copy"] = rec[f"{kind}_GBps"] / copy_GBps if copy_GBps else None


def _progress_line(rec: dict, elapsed: float) -> str:
    what = f"{rec['case']:<11} {rec['op'] if rec['case'] == 'locality' else '':<5} {rec['graph']:<9} " \
           f"{rec['ordering']:<7} {rec['impl']:<24}"
    if rec["status"] == "ok":
        peak = rec.get("peak_GiB")
        extra = f" peak {peak:6.2f} GiB" if peak is not None else ""
        comp = f" compile {rec['compile_s']:.1f} s" if rec.get("compile_s") else ""
        return f"[{elapsed:6.1f} s] {what} {rec['ms']:10.3f} ms{extra}{comp}"
    return f"[{elapsed:6.1f} s] {what} {rec['status']}"


def _graph_sizes(ctx: Context) -> dict:
    g = ctx.graphs
    return {"num_grid_nodes": g.num_grid_nodes, "num_mesh_nodes": g.num_mesh_nodes,
            **{f"{n}_edges": getattr(g, n).num_edges for n in GRAPH_NAMES}, "build_s": round(ctx.build_s, 2)}


def _settle_streams(device: torch.device) -> int:
    """Initialise cuBLAS (and cuBLASLt) on the default stream and on the CUDA-graph side stream
    (:func:`weathergnn.training.cuda_graph.side_stream`) before any case's memory baseline.

    cuBLAS allocates a workspace for each stream it first runs on (32 MiB on Hopper) and holds it
    until the process ends: left to the cases, the first case to run a product on a stream would
    count it in its peak, and which case that is depends on the selection. Returns the bytes allocated.
    """
    from weathergnn.training.cuda_graph import side_stream

    before = torch.cuda.memory_allocated(device)
    a = torch.ones(64, 64, device=device, dtype=torch.bfloat16)
    for stream in (torch.cuda.current_stream(device), side_stream(device)):
        stream.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(stream):
            torch.nn.functional.linear(a @ a, a, a[0])  # mm: cuBLAS; with a bias: cuBLASLt
        torch.cuda.current_stream(device).wait_stream(stream)
    torch.cuda.synchronize(device)
    del a
    return torch.cuda.memory_allocated(device) - before


def run_suite(opts: SuiteOptions) -> SuiteResult:
    """Run the selected cases and write ``<out>/benchmark_<device>_<date>.{json,csv,md,png}``.

    Raises:
        ValueError: bad options (see :meth:`SuiteOptions.validate`).
    """
    device = opts.validate()
    run = _Run(opts, device)
    log = opts.log
    env = report.environment(device)
    run.files = report.ResultFiles(opts.out, env["device_name"], env["date"])
    opt_dict = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(opts).items() if k != "log"}
    opt_dict["compile_backend"] = run.compile_backend
    run.header = {
        "suite": "weathergnn benchmark", "format": 1, **env, "options": opt_dict,
        "bytes_model": BYTES_MODEL, "locality_orderings": list(LOCALITY_ORDERINGS),
        "definitions": _definitions(), "anchors": {"source": ANCHOR_SOURCE, "config": ANCHOR_CONFIG,
                                                   "copy_GBps": list(ANCHOR_COPY_GBPS)},
    }
    log(f"weathergnn benchmark on {env['device_name']}: torch {env['torch']}, triton {env['triton']}, "
        f"torch_geometric {env['torch_geometric']}, compile backend {run.compile_backend}")

    run.header["copy_GBps"] = copy_bandwidth(device)
    log(f"device copy bandwidth: {run.header['copy_GBps']:.0f} GB/s (read + write)")
    if device.type == "cuda":
        run.header["stream_library_state_bytes"] = settled = _settle_streams(device)
        log(f"cuBLAS state of the default and CUDA-graph side streams: {settled / 2**20:.0f} MiB, before any case")

    ctx = Context.build(opts.grid_deg, opts.refinement, "hilbert", device, opts.latent, run.compile_backend)
    run.header["graphs"] = {"hilbert": _graph_sizes(ctx)}
    log(f"graphs (hilbert): {run.header['graphs']['hilbert']}")
    run.save()

    edge_sets = [g for g in GRAPH_NAMES if g in opts.graphs]  # in the suite's order
    for case in (c for c in CASES if c in opts.cases and c != "locality"):
        impls = [i for i in CASE_IMPLS[case].values() if opts.selected(i)]
        graphs = ("all",) if case == "step" else edge_sets
        run.run_case(ctx, case, case, graphs, "hilbert", impls)

    if "locality" in opts.cases:
        for ordering in LOCALITY_ORDERINGS:
            if ordering != "hilbert":
                ctx.release()
                if run.out_of_time():
                    octx = ctx  # sizes only; every measurement below is recorded as skipped
                else:
                    octx = Context.build(opts.grid_deg, opts.refinement, ordering, device, opts.latent,
                                         run.compile_backend)
                    run.header["graphs"][ordering] = _graph_sizes(octx)
            else:
                octx = ctx
            for op in ("sum", "fused"):
                impls = [CASE_IMPLS[op][name] for o, name in LOCALITY_IMPLS if o == op]
                impls = [i for i in impls if opts.selected(i)]
                run.run_case(octx, "locality", op, edge_sets, ordering, impls)
            octx.release()
    ctx.release()

    report.add_speedups(run.records)
    run.save(csv=True)
    table = report.format_tables(run.header, run.records)
    report.write_text(run.files.path("md"), table)
    report.plot_results(run.files.path("png"), run.header, run.records)
    paths = {ext: run.files.path(ext) for ext in ("json", "csv", "md", "png")}
    log("\n" + table)
    log("written: " + ", ".join(str(p) for p in paths.values()))
    return SuiteResult(run.header, run.records, paths, table)


def _definitions() -> dict[str, str]:
    from weathergnn.benchmarking import cases, timing

    return {"cases": cases.__doc__.strip(), "timing": timing.__doc__.strip()}

