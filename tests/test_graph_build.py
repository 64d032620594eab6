"""build_graphs on regular, pole-free and Gaussian grids: counts, CSC, features,
latitude weights, orderings, content hash."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from weathergnn.graphs import build_graphs, content_hash
from weathergnn.graphs.features import row_area_weights
from weathergnn.graphs.layout import hilbert_key_3d, mesh_permutation


def regular(res: float, poles: bool = True):
    if poles:
        lat = np.linspace(-90, 90, int(round(180 / res)) + 1)
    else:
        lat = np.arange(-90 + res / 2, 90, res)
    return lat, np.arange(int(round(360 / res))) * res


def gaussian(n_lat: int, n_lon: int):
    x, _ = np.polynomial.legendre.leggauss(n_lat)
    return np.rad2deg(np.arcsin(x)), np.arange(n_lon) * 360.0 / n_lon


GRIDS = {
    "3deg": (*regular(3.0), 4),  # 61 x 120 with poles
    "1deg": (*regular(1.0), 5),  # 181 x 360
    "5.625deg": (*regular(5.625, poles=False), 3),  # 32 x 64, -87.1875 .. 87.1875
    "tl31": (*gaussian(32, 64), 3),  # Gaussian, +-85.76
}


@pytest.fixture(scope="module", params=list(GRIDS))
def built(request):
    lat, lon, r = GRIDS[request.param]
    return request.param, lat, lon, r, build_graphs(lat, lon, r)


def _check_csc(es, n_src, n_dst):
    assert es.num_src == n_src and es.num_dst == n_dst
    assert es.src.dtype == es.dst.dtype == es.dst_ptr.dtype == torch.int64
    assert es.features.dtype == es.weight.dtype == torch.float32
    assert es.features.shape == (es.num_edges, 4)
    assert es.dst_ptr.shape == (n_dst + 1,)
    assert es.dst_ptr[0] == 0 and es.dst_ptr[-1] == es.num_edges
    assert torch.all(es.dst[1:] >= es.dst[:-1])
    key = es.dst * n_src + es.src
    assert torch.all(key[1:] > key[:-1])  # sorted by (dst, src), no duplicates
    counts = torch.bincount(es.dst, minlength=n_dst)
    assert torch.equal(es.dst_ptr[1:] - es.dst_ptr[:-1], counts)
    assert int(es.src.min()) >= 0 and int(es.src.max()) < n_src


def test_counts_and_csc(built):
    name, lat, lon, r, g = built
    G, M = lat.size * lon.size, 10 * 4**r + 2
    assert g.num_grid_nodes == G and g.num_mesh_nodes == M
    assert g.mesh.num_edges == sum(60 * 4**level for level in range(r + 1))
    assert g.mesh2grid.num_edges == 3 * G
    _check_csc(g.mesh, M, M)
    _check_csc(g.grid2mesh, G, M)
    _check_csc(g.mesh2grid, M, G)
    assert torch.all(g.grid2mesh.dst_ptr[1:] > g.grid2mesh.dst_ptr[:-1])  # every mesh node receives
    assert torch.all(g.mesh2grid.dst_ptr[1:] - g.mesh2grid.dst_ptr[:-1] == 3)


def test_nodes_and_weights(built):
    name, lat, lon, r, g = built
    assert torch.equal(g.grid_lat, torch.from_numpy(np.repeat(lat, lon.size)))
    assert torch.equal(g.grid_lon, torch.from_numpy(np.tile(lon, lat.size)))
    torch.testing.assert_close(g.mesh_pos.norm(dim=1), torch.ones(g.num_mesh_nodes, dtype=torch.float64))
    la, lo = np.deg2rad(g.grid_lat.numpy()), np.deg2rad(g.grid_lon.numpy())
    np.testing.assert_allclose(g.grid_features.numpy(),
                               np.stack([np.cos(la), np.sin(lo), np.cos(lo)], 1), atol=1e-6)
    p = g.mesh_pos.numpy()
    mla, mlo = np.arcsin(p[:, 2]), np.arctan2(p[:, 1], p[:, 0])
    np.testing.assert_allclose(g.mesh_features.numpy(),
                               np.stack([np.cos(mla), np.sin(mlo), np.cos(mlo)], 1), atol=1e-6)
    for es in (g.mesh, g.grid2mesh):
        deg = (es.dst_ptr[1:] - es.dst_ptr[:-1]).float()
        torch.testing.assert_close(es.weight, 1.0 / deg[es.dst])
    w = g.mesh2grid.weight.reshape(-1, 3)
    assert torch.all(w >= 0)
    torch.testing.assert_close(w.sum(1), torch.ones(w.shape[0]), atol=1e-6, rtol=0)
    # Barycentric weights reconstruct the (projected) grid point.
    tri = g.mesh_pos[g.mesh2grid.src].reshape(-1, 3, 3)
    rec = (w.double()[..., None] * tri).sum(1)
    pts = torch.from_numpy(np.stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)], 1))
    torch.testing.assert_close(rec / rec.norm(dim=1, keepdim=True), pts, atol=1e-6, rtol=0)


def _brute_edge_features(s_pos, r_pos):
    lat = np.arcsin(r_pos[2])
    lon = np.arctan2(r_pos[1], r_pos[0])
    east = np.array([-np.sin(lon), np.cos(lon), 0.0])
    north = np.array([-np.sin(lat) * np.cos(lon), -np.sin(lat) * np.sin(lon), np.cos(lat)])
    d = s_pos - r_pos
    return np.array([d @ east, d @ north, d @ r_pos, np.linalg.norm(d)])


def _rotation_features(s_pos, r_pos):
    """GraphCast's construction: rotate so the receiver is at lat 0, lon 0."""
    lat, lon = np.arcsin(r_pos[2]), np.arctan2(r_pos[1], r_pos[0])
    rz = np.array([[np.cos(-lon), -np.sin(-lon), 0], [np.sin(-lon), np.cos(-lon), 0], [0, 0, 1]])
    ry = np.array([[np.cos(lat), 0, np.sin(lat)], [0, 1, 0], [-np.sin(lat), 0, np.cos(lat)]])
    rot = ry @ rz
    x = rot @ (s_pos - r_pos)  # axes become (up, east, north)
    return np.array([x[1], x[2], x[0], np.linalg.norm(x)])


def test_edge_features_brute_force(built):
    name, lat, lon, r, g = built
    grid_pos = np.stack([np.cos(np.deg2rad(g.grid_lat.numpy())) * np.cos(np.deg2rad(g.grid_lon.numpy())),
                         np.cos(np.deg2rad(g.grid_lat.numpy())) * np.sin(np.deg2rad(g.grid_lon.numpy())),
                         np.sin(np.deg2rad(g.grid_lat.numpy()))], 1)
    mesh_pos = g.mesh_pos.numpy()
    rng = np.random.default_rng(1)
    for es, sp, rp in ((g.mesh, mesh_pos, mesh_pos), (g.grid2mesh, grid_pos, mesh_pos),
                       (g.mesh2grid, mesh_pos, grid_pos)):
        lengths = np.linalg.norm(sp[es.src.numpy()] - rp[es.dst.numpy()], axis=1)
        longest = lengths.max()
        f = es.features.numpy()
        assert abs(f[:, 3].max() - 1.0) < 1e-6
        for e in rng.choice(es.num_edges, 20, replace=False):
            s, d = int(es.src[e]), int(es.dst[e])
            want = _brute_edge_features(sp[s], rp[d]) / longest
            np.testing.assert_allclose(f[e], want, atol=1e-6)
            if abs(rp[d][2]) < 0.999:
                np.testing.assert_allclose(f[e], _rotation_features(sp[s], rp[d]) / longest, atol=1e-6)


def test_latitude_weights(built):
    name, lat, lon, r, g = built
    w = g.latitude_weights.numpy().reshape(lat.size, lon.size)
    assert abs(w.mean() - 1.0) < 1e-5
    assert np.all(w == w[:, :1])  # constant along a row
    row = w[:, 0].astype(np.float64)
    np.testing.assert_allclose(row, row[::-1], rtol=1e-5)  # symmetric
    if name == "tl31":
        _, gw = np.polynomial.legendre.leggauss(lat.size)
        np.testing.assert_allclose(row, gw / gw.mean(), rtol=1e-5)
        return
    interior = slice(1, -1) if name != "5.625deg" else slice(None)
    ratio = row[interior] / np.cos(np.deg2rad(lat[interior]))
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-5)  # prop. to cos lat
    if name in ("3deg", "1deg"):  # polar half-cells clipped at +-90
        dlat = np.deg2rad(lat[1] - lat[0])
        expect = (1 - np.cos(dlat / 2)) / (2 * np.sin(dlat / 2) * np.cos(np.deg2rad(lat[1])))
        np.testing.assert_allclose(row[0] / row[1], expect, rtol=1e-5)


def test_row_area_weights_sum_to_two():
    for lat in (regular(0.25)[0], regular(5.625, False)[0], gaussian(32, 64)[0]):
        assert abs(row_area_weights(lat).sum() - 2.0) < 1e-12


def test_orderings_same_graph_and_hilbert_locality():
    lat, lon, r = GRIDS["3deg"]
    graphs = {o: build_graphs(lat, lon, r, ordering=o) for o in ("natural", "random", "hilbert")}

    def canon(g):
        pos = g.mesh_pos.numpy().round(9)
        s, d = g.mesh.src.numpy(), g.mesh.dst.numpy()
        mesh = sorted(map(tuple, np.concatenate([pos[s], pos[d]], 1).tolist()))
        g2m = sorted(zip(g.grid2mesh.src.tolist(), map(tuple, pos[g.grid2mesh.dst.numpy()].tolist())))
        m2g = sorted(zip(g.mesh2grid.dst.tolist(), map(tuple, pos[g.mesh2grid.src.numpy()].tolist()),
                         g.mesh2grid.weight.numpy().round(5).tolist()))
        return mesh, g2m, m2g

    ref = canon(graphs["natural"])
    for o in ("random", "hilbert"):
        assert canon(graphs[o]) == ref
        assert graphs[o].content_hash != graphs["natural"].content_hash

    def gap(g, stat):
        return float(stat((g.mesh.src - g.mesh.dst).abs().double()))

    for other in ("natural", "random"):  # index distance between mesh neighbours
        assert gap(graphs["hilbert"], torch.median) < 0.05 * gap(graphs[other], torch.median)
        assert gap(graphs["hilbert"], torch.mean) < 0.2 * gap(graphs[other], torch.mean)


def test_hilbert_key_is_a_continuous_curve():
    bits = 3
    n = 1 << bits
    idx = np.stack(np.meshgrid(*[np.arange(n)] * 3, indexing="ij"), -1).reshape(-1, 3)
    xyz = (idx + 0.5) / n * 2 - 1
    key = hilbert_key_3d(xyz, bits=bits)
    assert np.array_equal(np.sort(key), np.arange(n**3))  # bijection
    path = idx[np.argsort(key)]
    steps = np.abs(np.diff(path, axis=0)).sum(1)
    assert np.all(steps == 1)  # consecutive cells are face neighbours


def test_mesh_permutation_errors():
    with pytest.raises(ValueError, match="ordering"):
        mesh_permutation(np.zeros((3, 3)), "zigzag")


def test_content_hash_sensitivity():
    lat, lon, _ = GRIDS["5.625deg"]
    base = content_hash(lat, lon, 3, 0.6, "hilbert")
    assert base == content_hash(lat.copy(), lon.copy(), 3, 0.6, "sfc")
    assert len({base,
                content_hash(lat, lon, 4, 0.6, "hilbert"),
                content_hash(lat, lon, 3, 0.7, "hilbert"),
                content_hash(lat, lon, 3, 0.6, "natural"),
                content_hash(lat + 1e-9, lon, 3, 0.6, "hilbert"),
                content_hash(lat, lon[:-1], 3, 0.6, "hilbert")}) == 6


def test_bad_inputs():
    lat, lon, _ = GRIDS["5.625deg"]
    with pytest.raises(ValueError, match="grid_lat"):
        build_graphs(lat[::-1], lon, 2)
    with pytest.raises(ValueError, match="grid_lon"):
        build_graphs(lat, np.concatenate([lon, [360.0]]), 2)
    with pytest.raises(ValueError, match="radius"):
        build_graphs(lat, lon, 2, radius_fraction=0.0)
    with pytest.raises(ValueError, match="32x64 grid.*refinement 6"):
        build_graphs(lat, lon, 6)


def test_to_device_cpu():
    lat, lon, _ = GRIDS["5.625deg"]
    g = build_graphs(lat, lon, 2).to("cpu")
    assert g.mesh.src.device.type == "cpu" and g.ordering == "hilbert"


@pytest.mark.slow
def test_quarter_degree_refinement6_counts():
    lat, lon = regular(0.25)
    assert lat.size == 721 and lon.size == 1440
    g = build_graphs(lat, lon, 6)
    assert g.num_mesh_nodes == 40_962
    assert g.mesh.num_edges == 327_660
    assert g.mesh2grid.num_edges == 3_114_720
    # GraphCast reports ~1.62 M grid2mesh edges at radius 0.6 x longest edge.
    assert 1_600_000 < g.grid2mesh.num_edges < 1_640_000
    assert torch.all(g.grid2mesh.dst_ptr[1:] > g.grid2mesh.dst_ptr[:-1])
