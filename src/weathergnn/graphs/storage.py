"""On-disk graph cache: versioned, hashed, atomically written.

File format (``FORMAT_VERSION`` 1): one ``torch.save`` file holding a dict

- ``"format"``: ``"weathergnn-graphs"``;
- ``"metadata"``: ``format_version`` (int), ``content_hash`` (sha256 hex of the
  build inputs, :func:`weathergnn.graphs.build.content_hash`), ``data_sha256``
  (sha256 of every stored tensor's bytes in key order: detects corruption),
  ``refinement``, ``radius_fraction``, ``grid2mesh_radius``, ``ordering``,
  ``num_grid_nodes``, ``num_mesh_nodes``, ``num_src``/``num_dst``/
  ``num_edges`` per edge set, ``created`` (UTC ISO 8601);
- ``"tensors"``: plain CPU tensors keyed ``grid_lat``, ..., ``mesh.src``,
  ``grid2mesh.dst_ptr``, ``mesh2grid.features``, ... (see ``_NODE_KEYS`` and
  ``_EDGE_KEYS``).

Only plain tensors and Python scalars are stored, so files load with
``torch.load(weights_only=True)`` (no pickled code). Writes go to a temporary
file in the destination directory, are fsynced, then ``os.replace``d onto
the final path: a crash never leaves a half-written cache under the final name.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from weathergnn.atomic import atomic_open

from .build import FORMAT_VERSION, build_graphs, content_hash
from .types import EdgeSet, WeatherGraphs

__all__ = [
    "GraphStorageError",
    "save_graphs",
    "load_graphs",
    "load_or_build",
    "cache_path",
    "describe_graphs",
]

log = logging.getLogger(__name__)

_FORMAT_NAME = "weathergnn-graphs"
_NODE_KEYS = ("grid_lat", "grid_lon", "grid_features", "latitude_weights", "mesh_pos", "mesh_features")
_EDGE_SETS = ("mesh", "grid2mesh", "mesh2grid")
_EDGE_KEYS = ("src", "dst", "features", "weight", "dst_ptr")
EARTH_RADIUS_KM = 6371.0


class GraphStorageError(ValueError):
    """A graph file is missing, corrupt, of another format version or hash."""


def _tensors(graphs: WeatherGraphs) -> dict[str, torch.Tensor]:
    out = {k: getattr(graphs, k).detach().cpu().contiguous() for k in _NODE_KEYS}
    for name in _EDGE_SETS:
        es: EdgeSet = getattr(graphs, name)
        for k in _EDGE_KEYS:
            out[f"{name}.{k}"] = getattr(es, k).detach().cpu().contiguous()
    return out


def _data_sha256(tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for k in sorted(tensors):
        t = tensors[k]
        h.update(f"{k}:{t.dtype}:{tuple(t.shape)}|".encode())
        h.update(t.contiguous().view(torch.uint8).reshape(-1).numpy().data)
    return h.hexdigest()


def _serialize(payload: dict, fileobj) -> None:
    """Write ``payload`` to an open binary file (separate for crash tests)."""
    torch.save(payload, fileobj)


def save_graphs(graphs: WeatherGraphs, path: str | os.PathLike) -> Path:
    """Atomically write ``graphs`` to ``path`` (parent directories created).

    Returns:
        The final path.
    Raises:
        OSError: on I/O failure; no partial file is left at ``path`` and the
            temporary file is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = _tensors(graphs)
    meta = {
        "format_version": FORMAT_VERSION,
        "content_hash": graphs.content_hash,
        "data_sha256": _data_sha256(tensors),
        "refinement": int(graphs.refinement),
        "radius_fraction": float(graphs.radius_fraction),
        "grid2mesh_radius": float(graphs.grid2mesh_radius),
        "ordering": str(graphs.ordering),
        "num_grid_nodes": graphs.num_grid_nodes,
        "num_mesh_nodes": graphs.num_mesh_nodes,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(),
    }
    for name in _EDGE_SETS:
        es: EdgeSet = getattr(graphs, name)
        meta[f"{name}.num_src"] = es.num_src
        meta[f"{name}.num_dst"] = es.num_dst
        meta[f"{name}.num_edges"] = es.num_edges
    payload = {"format": _FORMAT_NAME, "metadata": meta, "tensors": tensors}
    with atomic_open(path, "wb", sync_dir=True) as f:  # sync_dir persists the rename (POSIX)
        _serialize(payload, f)
    return path


def load_graphs(
    path: str | os.PathLike, expected_hash: str | None = None, *, verify_data: bool = True
) -> WeatherGraphs:
    """Read graphs written by :func:`save_graphs`.

    Args:
        path: the ``.pt`` file.
        expected_hash: if given, the stored ``content_hash`` must equal it.
        verify_data: recompute the tensors' sha256 (about 0.5 s at 0.25 deg).
    Raises:
        GraphStorageError: (naming the file) if it is missing, unreadable or
            truncated, of another format or format version, has a different
            content hash, or its data checksum does not match.
    """
    path = Path(path)
    if not path.is_file():
        raise GraphStorageError(f"graph file {path} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # zip/pickle errors of a truncated or corrupt file
        raise GraphStorageError(
            f"graph file {path} is corrupt or unreadable ({type(exc).__name__}: {exc}); "
            "delete it to rebuild"
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != _FORMAT_NAME:
        raise GraphStorageError(f"{path} is not a WeatherGNN graph file")
    meta, tensors = payload.get("metadata"), payload.get("tensors")
    if not isinstance(meta, dict) or not isinstance(tensors, dict):
        raise GraphStorageError(f"graph file {path} is corrupt: missing metadata or tensors")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise GraphStorageError(
            f"graph file {path} has format version {version}, this code reads "
            f"{FORMAT_VERSION}; delete it to rebuild"
        )
    if expected_hash is not None and meta.get("content_hash") != expected_hash:
        raise GraphStorageError(
            f"graph file {path} has content hash {meta.get('content_hash')}, expected {expected_hash}"
        )
    needed = list(_NODE_KEYS) + [f"{n}.{k}" for n in _EDGE_SETS for k in _EDGE_KEYS]
    missing = [k for k in needed if not isinstance(tensors.get(k), torch.Tensor)]
    if missing:
        raise GraphStorageError(f"graph file {path} is corrupt: missing tensors {missing}")
    if verify_data and _data_sha256({k: tensors[k] for k in needed}) != meta.get("data_sha256"):
        raise GraphStorageError(f"graph file {path} is corrupt: data checksum mismatch")
    edge_sets = {
        n: EdgeSet(
            **{k: tensors[f"{n}.{k}"] for k in _EDGE_KEYS},
            num_src=int(meta[f"{n}.num_src"]),
            num_dst=int(meta[f"{n}.num_dst"]),
        )
        for n in _EDGE_SETS
    }
    return WeatherGraphs(
        **{k: tensors[k] for k in _NODE_KEYS},
        **edge_sets,
        refinement=int(meta["refinement"]),
        content_hash=str(meta["content_hash"]),
        radius_fraction=float(meta["radius_fraction"]),
        grid2mesh_radius=float(meta["grid2mesh_radius"]),
        ordering=str(meta["ordering"]),
    )


def cache_path(cache_dir: str | os.PathLike, digest: str) -> Path:
    """``<cache_dir>/graph-<digest[:16]>.pt``."""
    return Path(cache_dir) / f"graph-{digest[:16]}.pt"


def load_or_build(
    grid_lat,
    grid_lon,
    refinement: int,
    radius_fraction: float = 0.6,
    cache_dir: str | os.PathLike = ".cache/graphs",
    *,
    ordering: str = "hilbert",
    mesh_levels: Sequence[int] | None = None,
    seed: int = 0,
) -> WeatherGraphs:
    """Load the cached graphs for these inputs, or build and cache them.

    The cache file is ``<cache_dir>/graph-<hash[:16]>.pt`` with the hash of
    :func:`~weathergnn.graphs.build.content_hash`; it is rebuilt only if absent,
    unreadable or of another hash/format version (then overwritten atomically).
    """
    digest = content_hash(grid_lat, grid_lon, refinement, radius_fraction, ordering, mesh_levels, seed)
    path = cache_path(cache_dir, digest)
    if path.is_file():
        try:
            return load_graphs(path, expected_hash=digest)
        except GraphStorageError as exc:
            log.warning("rebuilding graph cache: %s", exc)
    graphs = build_graphs(
        grid_lat, grid_lon, refinement, radius_fraction, mesh_levels, ordering=ordering, seed=seed
    )
    save_graphs(graphs, path)
    log.info("built graphs %s -> %s", digest[:16], path)
    return graphs


def _degree_stats(ptr: torch.Tensor) -> dict[str, float]:
    deg = (ptr[1:] - ptr[:-1]).double()
    if deg.numel() == 0:
        return {"min": 0, "mean": 0.0, "max": 0}
    return {"min": int(deg.min()), "mean": round(float(deg.mean()), 4), "max": int(deg.max())}


def describe_graphs(graphs: WeatherGraphs) -> dict:
    """Summary for ``weathergnn graph inspect``: counts, degrees, radius, hash, bytes."""
    tensors = _tensors(graphs)
    out: dict = {
        "content_hash": graphs.content_hash,
        "format_version": FORMAT_VERSION,
        "refinement": graphs.refinement,
        "ordering": graphs.ordering,
        "num_grid_nodes": graphs.num_grid_nodes,
        "num_mesh_nodes": graphs.num_mesh_nodes,
        "radius_fraction": graphs.radius_fraction,
        "grid2mesh_radius_chord": graphs.grid2mesh_radius,
        "grid2mesh_radius_km": EARTH_RADIUS_KM * 2.0 * math.asin(min(graphs.grid2mesh_radius / 2.0, 1.0)),
        "memory_bytes": int(sum(t.numel() * t.element_size() for t in tensors.values())),
    }
    for name in _EDGE_SETS:
        es: EdgeSet = getattr(graphs, name)
        out_deg = torch.bincount(es.src, minlength=es.num_src)
        out[name] = {
            "num_edges": es.num_edges,
            "num_src": es.num_src,
            "num_dst": es.num_dst,
            "in_degree": _degree_stats(es.dst_ptr),
            "out_degree": {
                "min": int(out_deg.min()) if out_deg.numel() else 0,
                "mean": round(float(out_deg.double().mean()), 4) if out_deg.numel() else 0.0,
                "max": int(out_deg.max()) if out_deg.numel() else 0,
            },
        }
    return out
