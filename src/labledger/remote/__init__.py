"""The tracking server as a store: the HTTP client and what keeps it from losing data.

- :mod:`.http`: ``HttpStore``, the Store protocol over HTTP, and the replay used by ``sync``.
- :mod:`._http_artifacts`: ``HttpBlobStore`` and the artifact-catalogue methods over HTTP.
- :mod:`.spool`: the client spool, fsynced JSON records of requests the server did not accept.
- :mod:`._pending_artifacts`: artifact uploads waiting in the spool for an unreachable server.
- :mod:`._spill`: batches the writer could not write to an SQL store, spilled to disk.

Nothing here is imported by ``import labledger``; the store and blob-store tables in
:mod:`labledger.store._backends` name these classes for ``http(s)://`` URIs.
"""
