"""Encoder-processor-decoder GNN, its layers and the forecaster wrapper."""

from weathergnn.models.forecaster import Forecaster
from weathergnn.models.graph_model import EncodeProcessDecode
from weathergnn.models.mlp import MLP, EdgeMLP
from weathergnn.models.processors import EdgeBuffers, FusedLayer, InteractionLayer, Processor

__all__ = [
    "MLP",
    "EdgeBuffers",
    "EdgeMLP",
    "EncodeProcessDecode",
    "Forecaster",
    "FusedLayer",
    "InteractionLayer",
    "Processor",
]
