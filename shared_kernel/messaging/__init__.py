"""The message runtime shared by the six services."""
