"""Write the first N time steps of the Held-Suarez store to a small zarr store.

The device machine takes at most 64 MiB of carried files; the full store is
about 150 MB. The slice keeps the store's int16 packing, chunking and
compression, so it reads through the same code path.

    python benchmarks/slice_heldsuarez.py --out .carry/hs_slice.zarr --times 320
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import xarray as xr

DEFAULT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "heldsuarez" / "hs_train.zarr"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", default=str(DEFAULT))
    ap.add_argument("--out", required=True)
    ap.add_argument("--times", type=int, default=320)
    args = ap.parse_args()
    ds = xr.open_zarr(args.src, decode_cf=False)
    sliced = ds.isel(time=slice(0, args.times))
    for var in sliced.variables.values():
        var.encoding.pop("chunks", None)
        var.encoding.pop("preferred_chunks", None)
    out = Path(args.out)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    sliced.to_zarr(tmp, zarr_format=2, consolidated=True, mode="w")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    print(f"wrote {out}: {args.times} times")


if __name__ == "__main__":
    main()
