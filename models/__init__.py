"""Committed default models, installed as ``bridge.models`` (see pyproject.toml)."""
