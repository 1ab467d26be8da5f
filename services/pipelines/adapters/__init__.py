"""Adapters behind the Pipelines ports: Azure Pipelines YAML and local blob storage."""
