"""GPU benchmark suite of WeatherGNN's message passing (``weathergnn benchmark``).

Times forward + backward of sum aggregation, one interaction-network layer, one
fused-processor layer and a GraphCast-size training step, ours (backend torch
and triton) side by side with plain torch, PyG (eager and ``torch.compile``)
and cuSPARSE, plus a mesh-ordering (locality) comparison; writes JSON, CSV, a
markdown table and a PNG plot. Modules:

- :mod:`.timing`: CUDA-event / wall-clock timing with warm-up, peak memory, copy bandwidth;
- :mod:`.bytes_model`: bytes moved by sum aggregation (ideal and gathered);
- :mod:`.baselines`: plain-torch and PyG implementations (PyG imported lazily);
- :mod:`.cases`: the cases and the implementations compared in each;
- :mod:`.anchors`: earlier H200 measurements shown beside ours;
- :mod:`.report`: results files, tables and plot;
- :mod:`.suite`: orchestration (:func:`run_suite`).
"""

from weathergnn.benchmarking.suite import SuiteOptions, SuiteResult, run_suite

__all__ = ["SuiteOptions", "SuiteResult", "run_suite"]
