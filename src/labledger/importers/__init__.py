"""Bring history in: runs recorded by MLflow, TensorBoard and W&B, written into a labledger store.

``import_mlflow(source, store)`` reads any MLflow tracking URI (a SQLite or PostgreSQL
database, a ``mlruns/`` folder, an MLflow server) through the ``mlflow`` client;
``import_tensorboard(logdir, store)`` reads event files through ``tensorboard``;
``import_wandb(dir, store)`` reads W&B run directories (their ``.wandb`` logs). All
write through the Store protocol (``create_run`` and ``write_batch``), keep original
times, ids and authors, and are idempotent: importing twice imports nothing twice.
"""

from __future__ import annotations

from ._common import ImportSummary
from ._mlflow import import_mlflow
from ._tensorboard import import_tensorboard
from ._wandb import import_wandb

__all__ = ["ImportSummary", "import_mlflow", "import_tensorboard", "import_wandb"]
