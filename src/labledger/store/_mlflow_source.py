"""Reading an MLflow tracking database (the source of ``labledger import mlflow``).

When the MLflow tracking URI is an SQL database with MLflow's ``metrics`` table, a run's
metric histories are read in one query instead of one client call per metric (the
importer falls back to the client otherwise). The SQL lives here, with the rest of the
SQL labledger writes; the importer only maps values.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["MlflowMetricsSource"]

_COLUMNS = {"key", "value", "timestamp", "step", "run_uuid", "is_nan"}
_HISTORIES = (
    "SELECT key, value, timestamp, step, is_nan FROM metrics WHERE run_uuid = :r "
    "ORDER BY key, timestamp, step"
)


class MlflowMetricsSource:
    """Metric histories read straight from an MLflow SQL database (``available`` is False
    when ``uri`` is not one: then :meth:`read` gives nothing and the client is used)."""

    def __init__(self, uri: str) -> None:
        self.engine: Any = None
        if uri.startswith(("sqlite:", "postgresql", "mysql")):
            try:
                import sqlalchemy as sa

                engine = sa.create_engine(uri)
                with engine.connect() as conn:
                    cols = {c["name"] for c in sa.inspect(conn).get_columns("metrics")}
                if cols >= _COLUMNS:
                    self.engine = engine
                else:
                    engine.dispose()
            except Exception:  # not MLflow's schema: read through the client
                self.engine = None

    @property
    def available(self) -> bool:
        return self.engine is not None

    def read(self, run_id: str) -> dict[str, tuple[list[int], list[float], list[float]]]:
        """``{key: (steps, values, timestamps in s)}`` of one MLflow run, as stored (NaN
        where MLflow marked it; MLflow's clamped infinities left as they are)."""
        if self.engine is None:
            return {}
        import sqlalchemy as sa

        out: dict[str, tuple[list[int], list[float], list[float]]] = {}
        with self.engine.connect() as conn:
            for key, value, ts, step, is_nan in conn.execute(sa.text(_HISTORIES), {"r": run_id}):
                steps, values, stamps = out.setdefault(key, ([], [], []))
                steps.append(int(step))
                values.append(math.nan if is_nan else float(value))
                stamps.append(int(ts) / 1000.0)
        return out

    def close(self) -> None:
        if self.engine is not None:
            self.engine.dispose()
