"""Adapters behind the Packaging ports: a NuGet feed and an OCI registry on local disk."""
