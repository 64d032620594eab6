"""Graph cache: round trip, rebuild only on hash change, atomic write, corruption."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest
import torch

import weathergnn.graphs.storage as storage
from weathergnn.graphs import (
    GraphStorageError,
    build_graphs,
    content_hash,
    describe_graphs,
    load_graphs,
    load_or_build,
    save_graphs,
)
from weathergnn.graphs.types import EdgeSet

LAT = np.arange(-87.1875, 90, 5.625)  # 32 lats, no poles
LON = np.arange(64) * 5.625


@pytest.fixture(scope="module")
def graphs():
    return build_graphs(LAT, LON, 2)


def _assert_equal(a, b):
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, EdgeSet):
            for g in dataclasses.fields(x):
                xv, yv = getattr(x, g.name), getattr(y, g.name)
                if isinstance(xv, torch.Tensor):
                    assert xv.dtype == yv.dtype and torch.equal(xv, yv), (f.name, g.name)
                else:
                    assert xv == yv
        elif isinstance(x, torch.Tensor):
            assert x.dtype == y.dtype and torch.equal(x, y), f.name
        else:
            assert x == y, f.name


def test_round_trip(graphs, tmp_path):
    path = save_graphs(graphs, tmp_path / "sub" / "g.pt")
    assert path.is_file()
    _assert_equal(graphs, load_graphs(path, expected_hash=graphs.content_hash))
    assert [p.name for p in path.parent.iterdir()] == ["g.pt"]  # no temp files left


def test_load_or_build_rebuilds_only_on_hash_change(tmp_path, monkeypatch):
    calls = []
    real = storage.build_graphs

    def counting(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(storage, "build_graphs", counting)
    g1 = load_or_build(LAT, LON, 2, 0.6, tmp_path)
    expected = tmp_path / f"graph-{content_hash(LAT, LON, 2, 0.6)[:16]}.pt"
    assert expected.is_file() and len(calls) == 1
    g2 = load_or_build(LAT, LON, 2, 0.6, tmp_path)
    assert len(calls) == 1
    _assert_equal(g1, g2)
    load_or_build(LAT, LON, 2, 0.7, tmp_path)  # different radius -> new hash
    assert len(calls) == 2
    load_or_build(LAT, LON, 2, 0.6, tmp_path, ordering="natural")
    assert len(calls) == 3
    assert len(list(tmp_path.glob("graph-*.pt"))) == 3
    # A corrupt cache is rebuilt, not returned.
    expected.write_bytes(expected.read_bytes()[:1000])
    load_or_build(LAT, LON, 2, 0.6, tmp_path)
    assert len(calls) == 4
    _assert_equal(g1, load_graphs(expected))


def test_atomic_write_on_crash(graphs, tmp_path, monkeypatch):
    path = tmp_path / "g.pt"

    def crash(payload, f):
        f.write(b"PK\x03\x04 half a zip")
        raise RuntimeError("simulated crash during write")

    monkeypatch.setattr(storage, "_serialize", crash)
    with pytest.raises(RuntimeError, match="simulated"):
        save_graphs(graphs, path)
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []  # temp file removed
    # A crash while replacing an existing good file keeps the old file intact.
    monkeypatch.undo()
    save_graphs(graphs, path)
    monkeypatch.setattr(storage, "_serialize", crash)
    with pytest.raises(RuntimeError):
        save_graphs(graphs, path)
    _assert_equal(graphs, load_graphs(path))
    assert [p.name for p in tmp_path.iterdir()] == ["g.pt"]


def test_corrupt_files_raise_clear_errors(graphs, tmp_path):
    path = save_graphs(graphs, tmp_path / "g.pt")
    data = path.read_bytes()
    trunc = tmp_path / "trunc.pt"
    trunc.write_bytes(data[: len(data) // 2])
    with pytest.raises(GraphStorageError, match="trunc.pt"):
        load_graphs(trunc)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(os.urandom(4096))
    with pytest.raises(GraphStorageError, match="garbage.pt"):
        load_graphs(garbage)
    with pytest.raises(GraphStorageError, match="does not exist"):
        load_graphs(tmp_path / "missing.pt")
    with pytest.raises(GraphStorageError, match="content hash"):
        load_graphs(path, expected_hash="0" * 64)


def test_tampered_tensor_and_version(graphs, tmp_path, monkeypatch):
    path = save_graphs(graphs, tmp_path / "g.pt")
    payload = torch.load(path, weights_only=True)
    payload["tensors"]["mesh.src"][0] += 1
    torch.save(payload, tmp_path / "tampered.pt")
    with pytest.raises(GraphStorageError, match="checksum"):
        load_graphs(tmp_path / "tampered.pt")
    monkeypatch.setattr(storage, "FORMAT_VERSION", storage.FORMAT_VERSION + 1)
    with pytest.raises(GraphStorageError, match="format version"):
        load_graphs(path)


def test_describe(graphs):
    d = describe_graphs(graphs)
    assert d["content_hash"] == graphs.content_hash
    assert d["num_grid_nodes"] == 32 * 64 and d["num_mesh_nodes"] == 162
    assert d["mesh"]["num_edges"] == 60 + 240 + 960
    assert d["mesh2grid"]["in_degree"] == {"min": 3, "mean": 3.0, "max": 3}
    assert d["grid2mesh"]["in_degree"]["min"] >= 1
    assert d["grid2mesh_radius_km"] > 0 and d["memory_bytes"] > 0
