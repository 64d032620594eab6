"""Time ``build_graphs`` per stage on a regular lat-lon grid.

Usage: python benchmarks/graph_build_time.py [--res 0.25] [--refinement 6] [--ordering hilbert]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from weathergnn.graphs.build import build_graphs
from weathergnn.graphs.storage import describe_graphs


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--res", type=float, default=0.25, help="grid spacing, degrees (poles included)")
    p.add_argument("--refinement", type=int, default=6)
    p.add_argument("--radius-fraction", type=float, default=0.6)
    p.add_argument("--ordering", default="hilbert")
    p.add_argument("--repeat", type=int, default=1)
    a = p.parse_args()
    n_lat = int(round(180 / a.res)) + 1
    n_lon = int(round(360 / a.res))
    lat = np.linspace(-90, 90, n_lat)
    lon = np.arange(n_lon) * a.res
    for _ in range(a.repeat):
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        g = build_graphs(lat, lon, a.refinement, a.radius_fraction, ordering=a.ordering, timings=timings)
        total = time.perf_counter() - t0
        print(f"grid {n_lat}x{n_lon}, refinement {a.refinement}, ordering {a.ordering}")
        for k, v in timings.items():
            print(f"  {k:<18s} {v:7.3f} s")
        print(f"  {'total':<18s} {total:7.3f} s")
    d = describe_graphs(g)
    for k in ("mesh", "grid2mesh", "mesh2grid"):
        print(f"  {k:<10s} edges {d[k]['num_edges']:>10,d}  in-degree {d[k]['in_degree']}")


if __name__ == "__main__":
    main()
