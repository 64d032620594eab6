"""Floor: how fast can one interaction layer on an edge set run on this GPU, whatever its kernels?

Issue 3's target 2 asks the interaction layer (forward + backward, bf16,
latent and hidden 512) to run 2.5x faster than PyG + torch.compile: 3.44 /
14.26 / 33.53 ms on mesh / grid2mesh / mesh2grid. Whatever the kernels, the
layer has to do

* its products: 6 over the edges (``[E, 512] x [512, 512]``: the edge MLP's
  two layers, forward, input gradient and weight gradient), 12 over the
  receivers (sender and receiver projections aside: ``W_d``, the node MLP's
  ``W_h``, ``W_a`` and second layer, forward and both gradients) and 3 over
  the senders (``W_s``: forward, input and weight gradient);
* the memory traffic no product covers (each tensor read once, written
  once, every fusion that does not change a product assumed done):
  the edge LayerNorm forward (read ``y``, ``e``; write ``e'`` and its sum
  ``agg`` over receivers), its backward (read ``dL/de'``, ``y`` and
  ``dL/dagg``; write ``dL/dy``), the sums of ``dL/dpre`` over senders and
  receivers (read ``dL/dpre``; write both), the receivers' LayerNorm forward
  (read ``y_n``, ``h``; write ``h'``) and backward (read ``dL/dh'``, ``y_n``;
  write ``dL/dy_n``).

This script runs those products as bare cuBLAS calls (``torch.mm``, no
epilogues) and that traffic as device-to-device copies of the same bytes
(1 GiB each: at copy bandwidth, the most a pass can move), each as one CUDA graph, on
random data of the edge set's sizes (no graph is built: only the counts
matter):

* ``products``: the products back to back;
* ``passes``: the copies;
* ``serial``: products, then the copies;
* ``overlapped``: products on one stream, the copies on another, nothing
  ordering them (a real layer's passes depend on its products, and it
  cannot overlap more than this).

Each row has the median of CUDA-event samples (L2 flushed before each), the
effective TFLOP/s or GB/s, and the SM clock and board power polled through
NVML while the samples ran (the H200 lowers its clock under its power limit,
and a layer that does both products and passes draws more power than either
alone).

    python benchmarks/mapper_floor.py --json $OUT/mapper_floor.json
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sweep_file import SweepFile  # noqa: E402

from weathergnn.benchmarking import timing  # noqa: E402
from weathergnn.benchmarking.clocks import ClockMonitor  # noqa: E402
from weathergnn.training.cuda_graph import CapturedStep  # noqa: E402

LATENT = 512
COPY_CHUNK = 2**30  # bytes per copy of the passes' traffic

#: (edges, senders, receivers) of the 0.25 deg grid and refinement-6 multimesh (the suite's graphs) and the
#: ms that 2.5x the anchor's PyG + torch.compile layer needs (8.61, 35.64, 83.83 ms / 2.5).
EDGE_SETS = {
    "mesh": (327_660, 40_962, 40_962, 8.61 / 2.5),
    "grid2mesh": (1_618_824, 1_038_240, 40_962, 35.64 / 2.5),
    "mesh2grid": (3_114_720, 40_962, 1_038_240, 83.83 / 2.5),
}


@dataclass
class Counts:
    """What an interaction layer on one edge set must do: products (rows of each ``[rows, 512] x [512, 512]``
    product or weight gradient) and passes (bytes to read plus bytes to write)."""

    products: list[tuple[str, int]]
    pass_bytes: int

    @property
    def flop(self) -> float:
        return sum(2.0 * rows * LATENT * LATENT for _, rows in self.products)


def layer_counts(edges: int, senders: int, receivers: int) -> Counts:
    """The products and bytes of one interaction layer, forward and backward (module docstring)."""
    e, s, r = edges, senders, receivers
    products = ([("edge", e)] * 6 + [("receiver", r)] * 12 + [("sender", s)] * 3)
    row = LATENT * 2  # bytes of one bf16 row
    passes = [
        (2 * e, e + r),  # edge LayerNorm forward: read y, e; write e', agg
        (2 * e + r, e),  # its backward: read dL/de', y, dL/dagg; write dL/dy
        (e, s + r),  # sums of dL/dpre over senders and receivers
        (2 * r, r),  # receivers' LayerNorm forward: read y_n, h; write h'
        (2 * r, r),  # its backward: read dL/dh', y_n; write dL/dy_n
    ]
    return Counts(products, sum(reads + writes for reads, writes in passes) * row)


class Work:
    """The products and the copies of :func:`layer_counts` on random bf16 tensors of the right sizes."""

    def __init__(self, counts: Counts, device: torch.device):
        def rand(*shape):
            return torch.randn(*shape, device=device, dtype=torch.bfloat16)

        self.w = rand(LATENT, LATENT)
        rows = sorted({n for _, n in counts.products})
        self.x = {n: rand(n, LATENT) for n in rows}  # one input per row count; products re-read it
        self.y = {n: torch.empty(n, LATENT, device=device, dtype=torch.bfloat16) for n in rows}
        self.g = torch.empty(LATENT, LATENT, device=device, dtype=torch.bfloat16)
        self.products = counts.products
        # copies of up to 1 GiB (each reads and writes its size: a 2 GiB copy is how the suite measures copy
        # bandwidth) moving pass_bytes in all: the fastest way to move them, so the floor errs low
        size = counts.pass_bytes // 2
        self.src = torch.ones(min(size, COPY_CHUNK), device=device, dtype=torch.uint8)
        self.dst = torch.empty_like(self.src)
        self.copies = [COPY_CHUNK] * (size // COPY_CHUNK) + ([size % COPY_CHUNK] if size % COPY_CHUNK else [])

    def run_products(self) -> None:
        for i, (_, n) in enumerate(self.products):
            x = self.x[n]
            if i % 3 == 2:  # one in three is a weight gradient: [512, rows] x [rows, 512]
                torch.mm(x.t(), x, out=self.g)
            else:
                torch.mm(x, self.w, out=self.y[n])

    def run_passes(self) -> None:
        for n in self.copies:
            self.dst[:n].copy_(self.src[:n])


def _overlapped(work: Work, device: torch.device):
    """Products on the capturing stream, copies on a side stream forked from it and joined at the end."""
    side = torch.cuda.Stream(device)

    def fn() -> None:
        main = torch.cuda.current_stream(device)
        side.wait_stream(main)
        with torch.cuda.stream(side):
            work.run_passes()
        work.run_products()
        main.wait_stream(side)

    return fn


def measure(name: str, fn, device: torch.device, repeats: int) -> dict:
    """``fn`` as one CUDA graph (:class:`CapturedStep`: the 3 warm-up calls are 2 eager ones and the
    capture), then timed replays with the clock polled."""
    step = CapturedStep(fn, device, warmup=2)
    monitor = ClockMonitor(device)
    m = timing.measure(step, device=device, warmup=3, repeats=repeats, monitor=monitor)
    clocks = monitor.summary(m.windows)
    return {"work": name, "ms": round(m.median_ms, 3), "samples_ms": [round(s, 3) for s in m.samples_ms],
            "sm_MHz": clocks.get("sm_MHz"), "power_W": clocks.get("power_W"), "reasons": clocks.get("reasons")}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--graphs", default="mesh,grid2mesh,mesh2grid", help="edge sets, comma-separated")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--json", required=True, help="output file (rewritten after every row)")
    args = ap.parse_args(argv)
    if not torch.cuda.is_available():
        raise SystemExit("mapper_floor.py needs a CUDA GPU")
    device = torch.device("cuda")
    graphs = args.graphs.split(",")
    unknown = sorted(set(graphs) - set(EDGE_SETS))
    if unknown:
        raise SystemExit(f"--graphs: unknown edge set(s) {unknown}; choose from {sorted(EDGE_SETS)}")
    out = SweepFile(args.json, device, latent=LATENT, dtype="bfloat16",
                    copy_GBps=round(timing.copy_bandwidth(device), 1))
    for graph in graphs:
        edges, senders, receivers, needed_ms = EDGE_SETS[graph]
        counts = layer_counts(edges, senders, receivers)
        work = Work(counts, device)
        head = {"graph": graph, "edges": edges, "senders": senders, "receivers": receivers,
                "needed_ms": round(needed_ms, 3), "TFLOP": round(counts.flop / 1e12, 3),
                "pass_GB": round(counts.pass_bytes / 1e9, 2), "products": len(counts.products)}
        for name, fn in (("products", work.run_products), ("passes", work.run_passes),
                         ("serial", lambda: (work.run_products(), work.run_passes())),
                         ("overlapped", _overlapped(work, device))):
            def fill(row, name=name, fn=fn):
                row.update(measure(name, fn, device, args.repeats))
                if name == "products":
                    row["TFLOPs"] = round(counts.flop / row["ms"] / 1e9, 1)
                elif name == "passes":
                    row["GBps"] = round(counts.pass_bytes / row["ms"] / 1e6, 1)
            out.add_config(dict(head), fill)
        work = None  # free this edge set's tensors before the next one's
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
