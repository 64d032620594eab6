"""WeatherGNN: train graph-neural-network emulators of the global atmosphere on spherical meshes."""

__version__ = "0.1.0"
