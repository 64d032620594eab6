"""Anchor measurements of today's tools on the same H200, shown beside ours as a reference.

Copied from ``../shared/anchors/h200_pyg_graphcast025_l6.jsonl`` and
``h200_pyg_graphcast025_step.jsonl`` (NVIDIA H200, torch 2.11.0+cu130,
torch_geometric 2.8.0, 2026-11-20; see ``../shared/anchors/README.md``): 0.25 deg
grid, refinement-6 multimesh, latent 512, bf16 (cuSPARSE fp32), forward +
backward, median of 10 (aggregation) or 5 (layers, step) CUDA-event timings.
They are kept here as numbers because the device machine has no ``../shared``.

Keys are ``(case, graph, impl)`` in this suite's names; each value gives the
anchor's own label, its median milliseconds and peak GiB. The anchor's
"interaction layer torch eager/compiled" was its own plain-torch layer
(concatenated edge MLP), listed beside our ``ours-torch`` rows.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["ANCHOR_CONFIG", "ANCHOR_COPY_GBPS", "ANCHOR_SOURCE", "Anchor", "anchor_for"]

ANCHOR_SOURCE = "../shared/anchors/h200_pyg_graphcast025_{l6,step}.jsonl (NVIDIA H200, 2026-11-20)"

#: The configuration the anchors were measured at; anchors are attached only to records of it.
ANCHOR_CONFIG = {"grid_deg": 0.25, "refinement": 6, "latent": 512,
                 "num_edges": {"mesh": 327_660, "grid2mesh": 1_629_780, "mesh2grid": 3_114_720}}

#: Device-to-device copy bandwidth measured with the anchors (two runs), GB/s.
ANCHOR_COPY_GBPS = (4111, 4227)


class Anchor(NamedTuple):
    label: str
    ms: float
    peak_GiB: float | None
    compile_s: float | None = None


_SUM = {  # impl -> (anchor label, {graph: (ms, peak GiB)})
    "torch-index_add": ("torch index_add",
                        {"mesh": (2.408, 0.96), "grid2mesh": (12.354, 8.66), "mesh2grid": (26.849, 16.58)}),
    "torch-segment_reduce": ("torch segment_reduce(sorted)",
                             {"mesh": (1.556, 0.96), "grid2mesh": (6.269, 8.66), "mesh2grid": (24.62, 16.59)}),
    "pyg-scatter": ("pyg scatter",
                    {"mesh": (1.63, 0.7), "grid2mesh": (8.703, 8.17), "mesh2grid": (19.465, 13.79)}),
    "cusparse-csr-fp32": ("cuSPARSE csr spmm (fp32)",
                          {"mesh": (1.225, 0.57), "grid2mesh": (4.902, 10.58), "mesh2grid": (4.369, 13.65)}),
    "torch-index_add-compiled": ("torch.compile index_add",
                                 {"mesh": (1.899, 0.76), "grid2mesh": (10.267, 9.13), "mesh2grid": (16.698, 14.68)}),
}
_INTERACTION = {
    "ours-torch": ("interaction layer torch eager",
                   {"mesh": (18.81, 7.46), "grid2mesh": (90.87, 42.36), "mesh2grid": (200.46, 77.94)}),
    "ours-torch-compiled": ("interaction layer torch compiled",
                            {"mesh": (8.73, 5.54), "grid2mesh": (39.34, 33.06), "mesh2grid": (85.22, 58.33)}),
    "pyg": ("interaction layer PyG eager",
            {"mesh": (16.38, 8.09), "grid2mesh": (81.39, 46.72), "mesh2grid": (186.03, 78.93)}),
    "pyg-compiled": ("interaction layer PyG compiled",
                     {"mesh": (8.61, 4.4), "grid2mesh": (35.64, 26.84), "mesh2grid": (83.83, 47.32)}),
}
_STEP = {
    "pyg": Anchor("pyg eager + checkpointing", 846.0, 93.82, 2.0),
    "pyg-compiled": Anchor("pyg compiled + checkpointing", 390.7, 52.47, 51.9),
}


def anchor_for(case: str, graph: str, impl: str) -> Anchor | None:
    """The anchor of ``(case, graph, impl)`` at :data:`ANCHOR_CONFIG`, or None.

    ``case`` is ``"sum"``, ``"interaction"`` or ``"step"`` (graph ``"all"``);
    ``graph`` is ``"mesh"``, ``"grid2mesh"`` or ``"mesh2grid"``.
    """
    if case == "step":
        return _STEP.get(impl)
    table = {"sum": _SUM, "interaction": _INTERACTION}.get(case, {})
    if impl not in table:
        return None
    label, per_graph = table[impl]
    if graph not in per_graph:
        return None
    ms, peak = per_graph[graph]
    return Anchor(label, ms, peak)
