"""Node features, edge features and latitude (cell-area) weights.

Node features (grid and mesh): ``(cos lat, sin lon, cos lon)``, float32.

Edge features: the displacement ``d = x_sender - x_receiver`` (unit-sphere
Cartesian positions) expressed in the receiver's local frame
``(east, north, up)`` plus its length ``|d|``, all four divided by the longest
``|d|`` of the edge set; float32 ``[E, 4]``. This is the same information as
GraphCast's "rotate the receiver to lat 0, lon 0" features
(``graphcast/model_utils.py``, ``get_bipartite_graph_spatial_features`` with
``relative_to_receiver``): after that rotation the x, y, z axes are exactly up,
east, north; we store them in (east, north, up) order. The up component is
``cos(angle) - 1 <= 0``. The local frame at a pole uses the point's
longitude (``atan2(y, x)``, 0 for an exact pole vertex), so it is always
defined.

Latitude weights: proportional to the area of each grid cell, normalised to
mean 1 over the grid nodes (each row weight repeated ``n_lon`` times). Cell
boundaries are the midpoints between consecutive latitudes and +-90 at the ends,
area ``sin(lat_north) - sin(lat_south)``. For a regular grid this is exactly
``2 sin(dlat/2) cos(lat)`` for interior rows, and rows at the poles become
half-cells clipped at +-90 (WeatherBench2 / GraphCast convention); for a regular
grid without poles (e.g. 5.625 deg, -87.1875 .. 87.1875) the end boundaries
+-90 are exactly ``lat -+ dlat/2``. When the latitudes match Gaussian
latitudes (``arcsin`` of the Gauss-Legendre nodes, to 1e-6 deg) the
Gauss-Legendre quadrature weights are used instead (the midpoint rule is only
an approximation for Gaussian grids).
"""

from __future__ import annotations

import numpy as np
from scipy.special import roots_legendre

__all__ = [
    "lat_lon_to_xyz",
    "xyz_to_lat_lon",
    "node_features",
    "edge_features",
    "latitude_weights",
    "row_area_weights",
]


def lat_lon_to_xyz(lat_deg: np.ndarray, lon_deg: np.ndarray) -> np.ndarray:
    """Unit vectors ``[N, 3]`` float64 from latitude/longitude ``[N]`` in degrees."""
    lat = np.deg2rad(np.asarray(lat_deg, dtype=np.float64))
    lon = np.deg2rad(np.asarray(lon_deg, dtype=np.float64))
    cl = np.cos(lat)
    return np.stack([cl * np.cos(lon), cl * np.sin(lon), np.sin(lat)], axis=-1)


def xyz_to_lat_lon(xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(lat [N], lon [N]) in degrees, lon in [0, 360), from vectors ``[N, 3]``."""
    xyz = np.asarray(xyz, dtype=np.float64)
    r = np.linalg.norm(xyz, axis=-1)
    lat = np.rad2deg(np.arcsin(np.clip(xyz[..., 2] / r, -1.0, 1.0)))
    lon = np.mod(np.rad2deg(np.arctan2(xyz[..., 1], xyz[..., 0])), 360.0)
    return lat, lon


def node_features(lat_deg: np.ndarray, lon_deg: np.ndarray) -> np.ndarray:
    """``[N, 3]`` float32 ``(cos lat, sin lon, cos lon)`` from degrees ``[N]``."""
    lat = np.deg2rad(np.asarray(lat_deg, dtype=np.float64))
    lon = np.deg2rad(np.asarray(lon_deg, dtype=np.float64))
    return np.stack([np.cos(lat), np.sin(lon), np.cos(lon)], axis=-1).astype(np.float32)


def edge_features(
    src_pos: np.ndarray, dst_pos: np.ndarray, src: np.ndarray, dst: np.ndarray
) -> tuple[np.ndarray, float]:
    """Edge features in the receiver's (east, north, up) frame.

    With ``d = x_s - x_r`` and the receiver at (lat, lon):
    ``east = -sin(lon) d_x + cos(lon) d_y``,
    ``north = -sin(lat) (cos(lon) d_x + sin(lon) d_y) + cos(lat) d_z``,
    ``up = d . x_r = -|d|^2 / 2`` (unit vectors).

    Args:
        src_pos: [N_src, 3] unit vectors of the sender node set.
        dst_pos: [N_dst, 3] unit vectors of the receiver node set.
        src: [E] sender indices; dst: [E] receiver indices.
    Returns:
        (features [E, 4] float32 ``(d_east, d_north, d_up, |d|) / max|d|``,
        max|d| as a float: the longest chord length on the unit sphere).
    """
    lon = np.arctan2(dst_pos[:, 1], dst_pos[:, 0])
    lat = np.arcsin(np.clip(dst_pos[:, 2], -1.0, 1.0))
    sin_lon, cos_lon, sin_lat, cos_lat = np.sin(lon), np.cos(lon), np.sin(lat), np.cos(lat)
    sx, sy, sz = (np.ascontiguousarray(src_pos[:, k]) for k in range(3))
    rx, ry, rz = (np.ascontiguousarray(dst_pos[:, k]) for k in range(3))
    n_edges = src.shape[0]
    out = np.empty((n_edges, 4), dtype=np.float64)
    chunk = 1 << 20  # bounds temporaries at ~3 M edges
    for s in range(0, n_edges, chunk):
        i, r = src[s : s + chunk], dst[s : s + chunk]
        dx = sx.take(i) - rx.take(r)
        dy = sy.take(i) - ry.take(r)
        dz = sz.take(i) - rz.take(r)
        sl, cl = sin_lon.take(r), cos_lon.take(r)
        o = out[s : s + chunk]
        o[:, 0] = cl * dy - sl * dx
        o[:, 1] = cos_lat.take(r) * dz - sin_lat.take(r) * (cl * dx + sl * dy)
        d2 = dx * dx + dy * dy + dz * dz
        o[:, 2] = -0.5 * d2
        o[:, 3] = np.sqrt(d2)
    longest = float(out[:, 3].max()) if n_edges else 1.0
    if longest == 0.0:
        longest = 1.0
    out *= 1.0 / longest
    return out.astype(np.float32), longest


def _gaussian_weights(lat_deg: np.ndarray, atol_deg: float = 1e-6) -> np.ndarray | None:
    """Gauss-Legendre weights if ``lat_deg`` (ascending) are Gaussian latitudes."""
    n = lat_deg.shape[0]
    if n < 2 or n > 8192 or abs(lat_deg[0]) >= 90.0 or abs(lat_deg[-1]) >= 90.0:
        return None
    spacing = np.diff(lat_deg)
    if np.ptp(spacing) < 1e-9:  # regular grid: not Gaussian, skip the roots
        return None
    x, w = roots_legendre(n)  # ascending nodes in (-1, 1); == numpy leggauss
    glat = np.rad2deg(np.arcsin(x))
    if np.max(np.abs(glat - lat_deg)) <= atol_deg:
        return w
    return None


def row_area_weights(lat_deg: np.ndarray) -> np.ndarray:
    """Un-normalised cell-area weight per latitude row.

    Args:
        lat_deg: [n_lat] latitudes in degrees, strictly ascending, in [-90, 90].
    Returns:
        [n_lat] float64, ``sin(b_north) - sin(b_south)`` with boundaries at the
        midpoints and +-90 at the ends, or Gauss-Legendre weights when the
        latitudes are Gaussian (see the module docstring).
    Raises:
        ValueError: if latitudes are not strictly ascending within [-90, 90].
    """
    lat = np.asarray(lat_deg, dtype=np.float64)
    if lat.ndim != 1 or lat.size == 0:
        raise ValueError(f"latitudes must be a non-empty 1-D array, got shape {lat.shape}")
    if np.any(np.diff(lat) <= 0) or lat[0] < -90 or lat[-1] > 90:
        raise ValueError("latitudes must be strictly ascending within [-90, 90] degrees")
    g = _gaussian_weights(lat)
    if g is not None:
        return g
    bounds = np.concatenate([[-90.0], 0.5 * (lat[1:] + lat[:-1]), [90.0]])
    s = np.sin(np.deg2rad(bounds))
    return np.diff(s)


def latitude_weights(lat_deg: np.ndarray, n_lon: int) -> np.ndarray:
    """Cell-area weights of the flattened grid, mean 1.

    Args:
        lat_deg: [n_lat] ascending latitudes (degrees).
        n_lon: number of longitudes.
    Returns:
        [n_lat * n_lon] float32, latitude-major (row weight repeated n_lon times).
    """
    w = row_area_weights(lat_deg)
    w = w / w.mean()
    return np.repeat(w, int(n_lon)).astype(np.float32)
