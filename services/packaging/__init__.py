"""Packaging: NuGet package publications and container images built from successful builds."""
