"""Adapters of Source Control's ports: the systems behind them, local or remote."""
