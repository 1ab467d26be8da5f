"""Pipelines: generated pipeline definitions, their runs, and the build results they produce."""
