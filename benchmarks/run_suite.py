"""Run the WeatherGNN GPU benchmark suite: the same as ``weathergnn benchmark`` (same options).

Usage (on the GPU machine, from the repository root)::

    PYTHONPATH=src python benchmarks/run_suite.py --out $OUT/bench
    PYTHONPATH=src python benchmarks/run_suite.py --device cpu --grid-deg 10 --refinement 2 --latent 16 --repeats 2

See ``python benchmarks/run_suite.py --help`` and benchmarks/README.md.
"""

from __future__ import annotations

import sys

from weathergnn.cli.main import app

if __name__ == "__main__":
    sys.exit(app(["benchmark", *sys.argv[1:]]))
