"""The six bounded contexts, one deployable consumer each."""
