"""inst: a Python package installer driven by configuration files."""

__version__ = "0.1.0"
