"""Tracer for Prefect: the plugin and the client of tracer-sidecar."""

__version__ = "0.1.0"
