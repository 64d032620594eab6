"""WindowDataset samples vs direct indexing; loader and IO timing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

from weathergnn.data.demo import make_demo_dataset
from weathergnn.data.errors import DataError
from weathergnn.data.forcings import forcing_features
from weathergnn.data.loader import make_loader, timed
from weathergnn.data.windows import WindowDataset

CHANS = ["geopotential_500", "temperature_850", "mean_sea_level_pressure"]


@pytest.fixture(scope="module")
def demo():
    return make_demo_dataset(n_lat=8, n_lon=16, n_times=20)


def _direct(ds, i, chans):
    """[T=1, G, C] state at time index i, built independently with numpy."""
    cols = [ds.geopotential.sel(level=500).values[i], ds.temperature.sel(level=850).values[i],
            ds.mean_sea_level_pressure.values[i]]
    return np.stack([c.reshape(-1) for c in cols], axis=-1)


def test_sample_layout_and_values(demo):
    w = WindowDataset(demo, CHANS, rollout_steps=3)
    assert w.time_step == np.timedelta64(6, "h")
    assert len(w) == 20 - 1 - 3
    s = w[0]
    assert s["inputs"].shape == (2, 128, 3) and s["targets"].shape == (3, 128, 3)
    assert s["forcings"].shape == (5, 128, 5) and s["static"].shape == (128, 2)
    assert all(s[k].dtype == torch.float32 for k in ("inputs", "targets", "forcings", "static"))
    assert s["init_time"].item() == demo.time.values[1].astype(np.int64) and s["member"].item() == -1
    j = 4  # sample j has init time index j + 1
    s = w[j]
    np.testing.assert_array_equal(s["inputs"][0].numpy(), _direct(demo, j, CHANS))
    np.testing.assert_array_equal(s["inputs"][1].numpy(), _direct(demo, j + 1, CHANS))
    np.testing.assert_array_equal(s["targets"][2].numpy(), _direct(demo, j + 4, CHANS))
    # flattened latitude-major grid
    assert w.grid_lat[17] == demo.latitude.values[1] and w.grid_lon[17] == demo.longitude.values[1]
    np.testing.assert_array_equal(s["forcings"].numpy(),
                                  forcing_features(demo.time.values[j:j + 5], w.grid_lat, w.grid_lon))


def test_curriculum_and_ranges(demo):
    t = demo.time.values
    w = WindowDataset(demo, CHANS, rollout_steps=1, start=t[2], end=t[15], max_rollout_steps=4)
    assert len(w) == (15 - 2 + 1) - 1 - 4
    assert w.init_times[0] == t[3] and w.init_times[-1] == t[11]
    a = w[0]
    w.set_rollout_steps(4)
    b = w[0]
    assert a["targets"].shape[0] == 1 and b["targets"].shape[0] == 4 and len(w) == 9
    torch.testing.assert_close(a["targets"][0], b["targets"][0])
    with pytest.raises(DataError, match="rollout_steps"):
        w.set_rollout_steps(5)
    with pytest.raises(DataError, match="holds 3 states"):
        WindowDataset(demo, CHANS, rollout_steps=2, start=t[0], end=t[2])


def test_ensemble_members_and_errors(demo):
    ens = xr.concat([demo, demo + 1.0, demo + 2.0],
                    dim=xr.DataArray(np.array([0, 5, 7]), dims="member", name="member"))
    w = WindowDataset(ens, CHANS, members=[5, 7])
    n = 20 - 2
    assert len(w) == 2 * n
    s = w[n + 3]
    assert s["member"].item() == 7
    np.testing.assert_allclose(s["inputs"][1].numpy(), _direct(demo, 4, CHANS) + 2.0, rtol=1e-6)
    with pytest.raises(DataError, match="members"):
        WindowDataset(ens, CHANS, members=[3])
    with pytest.raises(DataError, match="no member dim"):
        WindowDataset(demo, CHANS, members=[0])


def test_nan_and_irregular_time(demo):
    bad = demo.copy(deep=True)
    bad["temperature"][6, 1, 2, 3] = np.nan
    w = WindowDataset(bad, CHANS)
    w[0]
    with pytest.raises(DataError, match="temperature_850") as e:
        w[5]  # reads time indices 5..7
    assert str(demo.time.values[6])[:13] in e.value.time and e.value.file
    irregular = demo.isel(time=[0, 1, 2, 4, 5])
    with pytest.raises(DataError, match="gap between"):
        WindowDataset(irregular, CHANS)


def test_no_static_fields(demo):
    w = WindowDataset(demo.drop_vars(["land_sea_mask", "geopotential_at_surface"]), CHANS)
    assert w[0]["static"].shape == (128, 0)


class _Timer:
    def __init__(self):
        self.events = []

    def start(self, key):
        self.events.append(("start", key))

    def end(self, key):
        self.events.append(("end", key))


def test_loader_batches_and_timing(demo):
    w = WindowDataset(demo, CHANS, rollout_steps=2)
    loader = make_loader(w, batch_size=4, shuffle=True, workers=0, seed=3)
    batches = list(loader)
    assert batches[0]["inputs"].shape == (4, 2, 128, 3) and batches[0]["init_time"].shape == (4,)
    seen = torch.cat([b["init_time"] for b in batches])
    assert sorted(seen.tolist()) == sorted(w.init_times.astype(np.int64).tolist())
    again = torch.cat([b["init_time"] for b in make_loader(w, 4, True, 0, seed=3)])
    torch.testing.assert_close(seen, again)  # seeded order
    timer = _Timer()
    out = list(timed(loader, timer))
    assert len(out) == len(loader) == 5
    # one start/end pair per batch plus the final wait that ends the iteration
    assert timer.events.count(("start", "IO")) == timer.events.count(("end", "IO")) == 6
    assert list(timed(loader, None))[0]["inputs"].shape[0] == 4


def test_loader_workers(demo):
    w = WindowDataset(demo, CHANS)
    loader = make_loader(w, batch_size=6, shuffle=False, workers=2, prefetch_factor=2)
    assert loader.persistent_workers and not (loader.pin_memory and not torch.cuda.is_available())
    first = next(iter(loader))
    torch.testing.assert_close(first["inputs"][1], w[1]["inputs"])


def test_heldsuarez_window(heldsuarez_store):
    ds = xr.open_zarr(heldsuarez_store).astype("float32")
    w = WindowDataset(ds, "heldsuarez", rollout_steps=2, start="2000-02-01", end="2000-02-10T18")
    assert len(w) == 40 - 3 and w.time_step == np.timedelta64(6, "h")
    s = w[0]
    assert s["inputs"].shape == (2, 2048, 29) and s["static"].shape == (2048, 2)
    i = int(np.searchsorted(ds.time.values, np.datetime64("2000-02-01T06")))
    z = ds.geopotential.isel(time=i + 2).sel(level=500).values.reshape(-1)
    np.testing.assert_array_equal(s["targets"][1][:, w.channels.index("geopotential_500")].numpy(), z)
