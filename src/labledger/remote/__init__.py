"""The tracking server as a store: the HTTP client and what keeps it from losing data.

- :mod:`.http`: ``HttpStore``, the Store protocol over HTTP, and the replay used by ``sync``.
- :mod:`._http_artifacts`: ``HttpBlobStore`` and the artifact-catalogue methods over HTTP.
- :mod:`.spool`: the outbox's directory layout: session folders of fsynced JSON records.
- :mod:`._outbox`: the outbox's record format (runs, batches) and its replay into SQL stores.
- :mod:`._catch_up`: a new run's writer replaying the outbox sessions of ended processes.
- :mod:`._pending_artifacts`: artifact records waiting in the outbox for an unreachable server.

Nothing here is imported by ``import labledger``; the store and blob-store tables in
:mod:`labledger.store._backends` name these classes for ``http(s)://`` URIs.
"""
