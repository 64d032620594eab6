"""Atomic training checkpoints with RNG state and metadata.

A checkpoint is one ``torch.save`` file holding a dict::

    {"format": "weathergnn-checkpoint", "format_version": 1,
     "model": state_dict, "optimizer": state_dict | None, "scheduler": state_dict | None,
     "step": int, "epoch": int, "config": dict, "norm_stats": dict, "graph_hash": str,
     "extra": dict, "rng": {...}, "torch_version": str, "weathergnn_version": str,
     "saved_at": ISO-8601 UTC str}

Writes are atomic: the file is written to a temporary file in the same
directory, flushed and fsync-ed, then ``os.replace``-d over the target (and the
directory fsync-ed where supported). A crash or exception at any point leaves
either the old checkpoint or the new one, never a partial file; the
temporary file is removed on exceptions.

Loading uses ``torch.load(weights_only=True)`` (no arbitrary code execution),
so ``config``, ``norm_stats`` and ``extra`` must consist of plain Python
containers/scalars/str, tensors and numpy arrays (numpy arrays and scalars
are stored tagged as ``{"__ndarray__": list, "dtype": str, "shape": list}``
and restored as numpy on load).
"""

from __future__ import annotations

import datetime as _dt
import os
import pickle
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from weathergnn.atomic import atomic_open

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_FORMAT_VERSION",
    "CheckpointError",
    "save_checkpoint",
    "load_checkpoint",
    "get_rng_state",
    "restore_rng_state",
]

CHECKPOINT_FORMAT = "weathergnn-checkpoint"
CHECKPOINT_FORMAT_VERSION = 1
_ND_TAG = "__ndarray__"


class CheckpointError(RuntimeError):
    """A checkpoint file is corrupt, truncated or not a WeatherGNN checkpoint."""


# ---------------------------------------------------------------- numpy tagging
def _encode(obj: Any) -> Any:
    if isinstance(obj, np.ndarray | np.generic):
        arr = np.asarray(obj)
        return {_ND_TAG: arr.tolist(), "dtype": arr.dtype.str, "shape": list(arr.shape)}
    if isinstance(obj, Mapping):
        return {k: _encode(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_encode(v) for v in obj)
    return obj


def _decode(obj: Any) -> Any:
    if isinstance(obj, dict):
        if _ND_TAG in obj and set(obj) == {_ND_TAG, "dtype", "shape"}:
            arr = np.asarray(obj[_ND_TAG], dtype=np.dtype(obj["dtype"])).reshape(obj["shape"])
            return arr[()] if arr.ndim == 0 else arr
        return {k: _decode(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_decode(v) for v in obj)
    return obj


# ---------------------------------------------------------------- RNG state
def get_rng_state() -> dict[str, Any]:
    """RNG states of python ``random``, numpy's global RNG, torch CPU and (if available) all CUDA devices.

    Returned in a form loadable with ``weights_only=True``.
    """
    name, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {
            "name": name,
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }
    return state


def restore_rng_state(state: Mapping[str, Any]) -> None:
    """Restore RNG states saved by :func:`get_rng_state` (``checkpoint["rng"]``).

    CUDA states are restored only when CUDA is available and the number of
    devices matches (otherwise skipped: they are device-specific).

    Raises:
        KeyError: a required entry is missing.
    """
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    npst = state["numpy"]
    keys = npst["keys"]
    keys = keys.cpu().numpy() if isinstance(keys, torch.Tensor) else np.asarray(keys)  # map_location may be cuda
    np.random.set_state(
        (npst["name"], keys.astype(np.uint32), int(npst["pos"]), int(npst["has_gauss"]), float(npst["cached_gaussian"]))
    )
    torch.set_rng_state(state["torch"].cpu())
    cuda = state.get("cuda")
    if cuda is not None and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in cuda])


# ---------------------------------------------------------------- save / load
def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """Strip DistributedDataParallel (``.module``) and torch.compile (``._orig_mod``) wrappers."""
    while True:
        if hasattr(model, "_orig_mod"):
            model = model._orig_mod
        elif isinstance(model, torch.nn.parallel.DistributedDataParallel | torch.nn.DataParallel):
            model = model.module
        else:
            return model


def save_checkpoint(
    path: str | os.PathLike[str],
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None,
    scheduler: Any | None,
    step: int,
    epoch: int,
    config: Mapping[str, Any],
    norm_stats: Mapping[str, Any],
    graph_hash: str,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write a checkpoint to ``path`` atomically; returns the path.

    Args:
        path: target file (parent directories are created).
        model: its ``state_dict`` is saved (DDP / torch.compile wrappers are
            stripped, so keys have no ``module.`` / ``_orig_mod.`` prefix).
        optimizer, scheduler: objects with ``state_dict()``, or ``None``.
        step: optimizer steps done; epoch: epochs done.
        config: the run configuration (plain data).
        norm_stats: normalisation statistics (plain data / numpy arrays).
        graph_hash: ``WeatherGraphs.content_hash`` the model was trained on.
        extra: anything else (plain data), e.g. best validation score.

    Also stored: RNG states (:func:`get_rng_state`), format name/version,
    torch and weathergnn versions, UTC time.

    Raises:
        OSError: the directory is not writable / disk full (the old
            checkpoint, if any, is left untouched and no temp file remains).
    """
    from weathergnn import __version__

    path = Path(path)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_FORMAT_VERSION,
        "model": _unwrap(model).state_dict(),
        "optimizer": None if optimizer is None else optimizer.state_dict(),
        "scheduler": None if scheduler is None else scheduler.state_dict(),
        "step": int(step),
        "epoch": int(epoch),
        "config": _encode(dict(config)),
        "norm_stats": _encode(dict(norm_stats)),
        "graph_hash": str(graph_hash),
        "extra": _encode(dict(extra or {})),
        "rng": get_rng_state(),
        "torch_version": str(torch.__version__),
        "weathergnn_version": __version__,
        "saved_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "wb", sync_dir=True) as f:
        torch.save(payload, f)
    return path


def load_checkpoint(
    path: str | os.PathLike[str],
    map_location: str | torch.device | None = "cpu",
) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Args:
        path: checkpoint file.
        map_location: passed to ``torch.load`` (default ``"cpu"``).

    Returns:
        The checkpoint dict (see module docstring), numpy arrays restored in
        ``config`` / ``norm_stats`` / ``extra``. Restore with
        ``model.load_state_dict(ckpt["model"])``, ``optimizer.load_state_dict(...)``,
        ``restore_rng_state(ckpt["rng"])``.

    Raises:
        FileNotFoundError: no file at ``path``.
        CheckpointError: file truncated/corrupt, not a WeatherGNN checkpoint,
            or of a newer format version; the message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint file not found: {path}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        if "Weights only load failed" in str(exc):
            raise CheckpointError(
                f"checkpoint {path} holds objects that weights_only loading refuses "
                f"(arbitrary Python classes); it was not written by save_checkpoint ({exc})"
            ) from exc
        raise CheckpointError(f"cannot read checkpoint {path}: corrupt or truncated file ({exc})") from exc
    except Exception as exc:  # torch raises RuntimeError, EOFError, IndexError, ... on damaged files
        raise CheckpointError(
            f"cannot read checkpoint {path}: corrupt, truncated or not a torch file ({type(exc).__name__}: {exc})"
        ) from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a WeatherGNN checkpoint (no format={CHECKPOINT_FORMAT!r} entry)")
    version = ckpt.get("format_version")
    if not isinstance(version, int) or version > CHECKPOINT_FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {path} has format_version {version!r}; this weathergnn reads <= {CHECKPOINT_FORMAT_VERSION}"
        )
    missing = {"model", "step", "epoch", "rng"} - set(ckpt)
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks entries {sorted(missing)}")
    for key in ("config", "norm_stats", "extra"):
        ckpt[key] = _decode(ckpt.get(key) or {})
    return ckpt
