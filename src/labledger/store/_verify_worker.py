"""A worker process of ``audit verify``: the per-run checks of one id range of a project.

``audit verify`` on PostgreSQL splits a large project's runs into id ranges and checks
them at once: the parent takes the first range, and one of these processes each of the
others (``python -m labledger.store._verify_worker``). A process, not a thread: the
checks are mostly JSON and hashing in Python, which threads would take turns at (a
thread per range gained 12% at 100k runs; a process per range halves the time on two
cores). The request comes on stdin (the store's URI may hold a password: never on the
command line), one JSON object ``{"uri", "project", "lo", "hi"}``; the answer is one
JSON object on stdout, ``{"found": [[run_id, field, message], ...], "later": [...]}``,
as :meth:`~labledger.store._audit_sql.AuditSqlMixin._verify_run_range` returns them.
"""

from __future__ import annotations

import json
import sys

__all__ = ["main"]


def main() -> int:
    from .sql import SqlStore

    request = json.loads(sys.stdin.read())
    store = SqlStore(request["uri"], migrate=False, pool_size=1)
    try:
        with store._read() as conn:
            found, later = store._verify_run_range(
                conn, request["project"], request["lo"], request["hi"]
            )
    finally:
        store.close()
    json.dump({"found": found, "later": later}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
