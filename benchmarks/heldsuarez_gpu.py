"""Held-Suarez training on the GPU in bf16: step time and peak memory per processor.

Runs the same training as the ``heldsuarez-5.625deg`` config (same model size,
graph and loss) for a fixed number of optimiser steps with each processor
realisation, on the CUDA device, with bf16 autocast, and records:

- median / mean BATCH, FORWARD and BACKWARD times from the Deep500-style timer
  (CUDA events), after the first ``--warmup`` steps are discarded;
- peak allocated GPU memory (``torch.cuda.max_memory_allocated``);
- the training loss at the start and end, and the validation RMSE.

Usage (on the device machine, with a time slice of the store carried along)::

    python benchmarks/slice_heldsuarez.py --out .carry/hs_slice.zarr --times 320   # here
    python benchmarks/heldsuarez_gpu.py --data .carry/hs_slice.zarr --steps 300 --json $OUT/hs_gpu.json

Results are saved as JSON with the GPU name, library versions and date.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch


def run(processor: str, args) -> dict:
    from weathergnn.config import load_config
    from weathergnn.timing import TimeType
    from weathergnn.training.trainer import train

    import xarray as xr

    times = xr.open_zarr(args.data)["time"].values
    split = times[int(0.8 * len(times))]
    last_train = times[int(0.8 * len(times)) - 1]
    cfg = load_config(
        "heldsuarez-5.625deg",
        {
            "data.source": args.data,
            "data.train": {"start": str(times[0]), "end": str(last_train)},
            "data.val": {"start": str(split), "end": str(times[-1])},
            "data.batch_size": args.batch_size,
            "data.workers": args.workers,
            "data.cache_dir": args.cache_dir,
            "model.processor": processor,
            "training.device": "cuda",
            "training.precision": "bf16",
            "training.max_steps": args.steps,
            "training.epochs": 1000,
            "training.time_limit_minutes": None,
            "training.rollout": {"start": args.rollout, "end": args.rollout, "ramp_steps": 0},
            "training.out_dir": str(Path(args.cache_dir) / f"run-{processor}"),
        },
    )
    torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    result = train(cfg, show_progress=False)
    wall = time.perf_counter() - t0
    timer = result.timer
    out = {"processor": processor, "steps": result.steps, "wall_s": wall,
           "peak_memory_GiB": torch.cuda.max_memory_allocated() / 2**30,
           "first_train_loss": result.first_train_loss, "final_train_loss": result.final_train_loss,
           "val_rmse_last_lead": result.validation}
    for key in (TimeType.BATCH, TimeType.FORWARD, TimeType.BACKWARD, TimeType.IO):
        values = np.asarray(timer.get_time(key))[args.warmup:]
        name = getattr(key, "name", str(key)).lower()
        if values.size:
            out[f"{name}_median_ms"] = float(np.median(values) * 1e3)
            out[f"{name}_mean_ms"] = float(np.mean(values) * 1e3)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="Held-Suarez zarr store (or a time slice of it)")
    ap.add_argument("--steps", type=int, default=300, help="optimiser steps per processor")
    ap.add_argument("--warmup", type=int, default=20, help="batches left out of the timing statistics")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--rollout", type=int, default=2, help="rollout length (steps) of the loss")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--cache-dir", default="/tmp/wg-cache")
    ap.add_argument("--processors", default="interaction,fused")
    ap.add_argument("--json", required=True, help="where to write the results")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("needs a CUDA device")
    results = {
        "benchmark": "heldsuarez_gpu",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "gpu": torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
        "batch_size": args.batch_size,
        "rollout": args.rollout,
        "runs": [run(p, args) for p in args.processors.split(",")],
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=2))
    print(f"{'processor':<12} {'batch ms':>9} {'fwd ms':>8} {'bwd ms':>8} {'io ms':>7} {'peak GiB':>9} {'loss':>16}")
    for r in results["runs"]:
        print(f"{r['processor']:<12} {r.get('batch_median_ms', float('nan')):>9.2f} "
              f"{r.get('forward_median_ms', float('nan')):>8.2f} {r.get('backward_median_ms', float('nan')):>8.2f} "
              f"{r.get('io_median_ms', float('nan')):>7.2f} {r['peak_memory_GiB']:>9.3f} "
              f"{r['first_train_loss']:>7.4f}->{r['final_train_loss']:.4f}")


if __name__ == "__main__":
    main()
