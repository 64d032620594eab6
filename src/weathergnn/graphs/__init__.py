"""Icosahedral multimesh and grid<->mesh graphs (GraphCast, Lam et al. 2023).

Public API: :func:`build_graphs`, :func:`content_hash`, :func:`save_graphs`,
:func:`load_graphs`, :func:`load_or_build`, :func:`describe_graphs`,
:class:`WeatherGraphs`, :class:`EdgeSet`.
"""

from .build import FORMAT_VERSION, build_graphs, content_hash
from .storage import GraphStorageError, describe_graphs, load_graphs, load_or_build, save_graphs
from .types import EdgeSet, WeatherGraphs

__all__ = [
    "FORMAT_VERSION",
    "EdgeSet",
    "GraphStorageError",
    "WeatherGraphs",
    "build_graphs",
    "content_hash",
    "describe_graphs",
    "load_graphs",
    "load_or_build",
    "save_graphs",
]
