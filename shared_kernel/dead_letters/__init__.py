"""The dead-letter store: what failed, why, and what operators did about it.

- ``capture``: a message taken off ``<service>.dlq`` as a row (fingerprint, group, failure).
- ``store``: the statements on ``dead_letters`` and ``dead_letters_archive``.
- ``mover``: the consumer that moves each dead letter from the DLQ into the store
  (commit, then ack).
- ``operations``: list, show, replay, edit-and-retry, purge, the archive; each
  change logged and published as an audit record (the ``devops dlq`` commands).
"""
