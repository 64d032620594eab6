"""Forecast evaluation (WeatherBench2 definitions, Rasp et al. 2024).

- ``forecast``: roll a checkpoint out and write a WeatherBench2-layout forecast zarr store;
- ``forecast_store``: open and validate any WB2-layout forecast store; the atomic writer;
- ``metrics``, ``ensemble``, ``climatology``, ``spectra``: the score functions;
- ``evaluate``: the streaming scoring pipeline (model, persistence, climatology);
- ``scorecard``, ``plots``, ``reference_curves``: Markdown/CSV/JSON scorecards, PNG plots,
  published reference numbers;
- ``scoring``: the quick rollout score of ``weathergnn evaluate --checkpoint``.

Submodules are imported on demand (nothing heavy is imported here).
"""
