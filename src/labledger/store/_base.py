"""The Store protocol every back end speaks, and the value types that cross it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol, TypedDict, runtime_checkable

from ._roles import ListPoints, MediaBlobOwner, ReplaysMany

if TYPE_CHECKING:
    import numpy as np
    from typing_extensions import NotRequired  # (typing's from Python 3.11)

    from ..query import Node

__all__ = [
    "RUN_STATUSES",
    "TERMINAL_STATUSES",
    "AccessControl",
    "ArtifactCatalog",
    "AuditTrail",
    "Batch",
    "ExportRecord",
    "History",
    "ListPoints",
    "MediaBlobOwner",
    "MediaItem",
    "MetricSummary",
    "MlflowObjects",
    "ModelRegistry",
    "ReplaysMany",
    "ReproVerdicts",
    "RunExport",
    "RunRecord",
    "RunStore",
    "ServerStore",
    "Store",
    "TokenBearer",
]

RUN_STATUSES = ("running", "finished", "failed", "crashed", "killed", "pruned")
TERMINAL_STATUSES = frozenset({"finished", "failed", "crashed", "killed", "pruned"})


@dataclass
class MediaItem:
    """One rich result (image, table, ...) as stored: its place (key, step, ``seq`` among
    the values logged under that key at that step), kind, encoded bytes and metadata."""

    key: str
    step: int
    seq: int
    kind: str
    data: bytes
    meta: dict[str, Any] = field(default_factory=dict)
    caption: str | None = None
    ts: float = 0.0

    @cached_property
    def sha256(self) -> str:
        import hashlib

        return hashlib.sha256(self.data).hexdigest()


@dataclass
class Batch:
    """One unit of writing: metric points of many keys plus run-level updates.

    ``id`` is an idempotency key: a store applies a batch at most once, so a batch
    retried after a timeout or from the spool is never stored twice.

    ``metrics`` maps key -> (steps, values, timestamps), three equal-length sequences.
    ``media`` holds rich results (:class:`MediaItem`), stored with their bytes in the
    batch's transaction.
    ``run_update`` holds run fields to set (status, ended_at, config, summary, tags,
    notes, env (merged key by key), exit_code, error, seed, datasets).
    """

    run_id: str
    metrics: dict[str, tuple[Any, Any, Any]] = field(default_factory=dict)
    run_update: dict[str, Any] = field(default_factory=dict)
    heartbeat: float | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    media: list[MediaItem] = field(default_factory=list)

    def point_count(self) -> int:
        return sum(len(s[0]) for s in self.metrics.values()) + len(self.media)


@dataclass
class History:
    """One metric series of one run, ordered by step (ties keep logging order)."""

    run_id: str
    key: str
    steps: np.ndarray
    values: np.ndarray
    timestamps: np.ndarray
    total: int = 0  # points in the full series (before any downsampling)

    def __len__(self) -> int:
        return len(self.steps)

    def to_list(self) -> list[tuple[int, float, float]]:
        return list(
            zip(self.steps.tolist(), self.values.tolist(), self.timestamps.tolist(), strict=True)
        )

    def to_pandas(self) -> Any:
        import pandas as pd

        return pd.DataFrame(
            {"step": self.steps, "value": self.values, "timestamp": self.timestamps}
        )

    def to_arrow(self) -> Any:
        """A ``pyarrow.Table`` (``step`` int64, ``value`` float64, ``timestamp`` float64),
        built over the arrays without copying them; ``run_id``, ``key`` and ``total`` in
        the schema's metadata. Needs ``pyarrow`` (imported here, not with labledger)."""
        import pyarrow as pa

        meta = {"run_id": self.run_id, "key": self.key, "total": str(self.total)}
        return pa.table(
            {"step": self.steps, "value": self.values, "timestamp": self.timestamps}
        ).replace_schema_metadata(meta)

    def to_arrow_ipc(self) -> bytes:
        """The series as one Arrow IPC stream (``application/vnd.apache.arrow.stream``):
        the raw little-endian arrays behind a small header, what ``GET …/history?format=arrow``
        sends."""
        import pyarrow as pa

        sink = pa.BufferOutputStream()
        table = self.to_arrow()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        return bytes(sink.getvalue())

    @classmethod
    def from_arrow(cls, table: Any, run_id: str | None = None, key: str | None = None) -> History:
        """The inverse of :meth:`to_arrow` (a table, or the bytes of an IPC stream)."""
        import pyarrow as pa

        if isinstance(table, (bytes, bytearray, memoryview)):
            table = pa.ipc.open_stream(pa.py_buffer(table)).read_all()
        meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}

        def col(name: str, dtype: Any) -> np.ndarray:
            import numpy

            # zero-copy where the column is one chunk without nulls
            return numpy.asarray(table.column(name).to_numpy(), dtype=dtype)

        steps = col("step", "int64")
        return cls(
            run_id if run_id is not None else meta.get("run_id", ""),
            key if key is not None else meta.get("key", ""),
            steps,
            col("value", "float64"),
            col("timestamp", "float64"),
            int(meta.get("total", len(steps))),
        )


class MetricSummary(TypedDict):
    """One series' stored summary (``metric_summary``): ``last`` is NaN when the last value was."""

    last: float | None
    min: float | None
    max: float | None
    count: int
    last_step: int
    last_ts: float


class RunRecord(TypedDict):
    """A run as every store gives it (SqlStore, LiteStore, HttpStore) and as ``Ledger``, the
    CLI (``labledger show --json``) and the server's ``/runs`` pass it on.

    ``summary`` is each series' last value with the explicit ``run.summary`` values over
    it (a sealed run's summary as sealed; ``amended`` holds its amendments);
    ``metrics`` the stored summary of each series. ``get_run`` adds the run's artifacts,
    edit events and newest audit record hash; the server's run listing adds ``repro`` when
    asked, ``labledger show`` ``children`` and ``repro``.
    """

    id: str
    project: str
    name: str
    status: str
    created_at: float
    ended_at: float | None
    runtime_s: float | None
    heartbeat_at: float | None
    config: dict[str, Any]
    summary: dict[str, Any]
    metrics: dict[str, MetricSummary]
    tags: list[str]
    notes: str | None
    seed: int | None
    env: dict[str, Any]
    datasets: list[Any]
    exit_code: int | None
    error: str | None
    host: str | None
    pid: int | None
    parent_run_id: str | None
    group: str | None
    job_type: str | None
    author: str | None
    # a reproduction (job_type "repro") names its original (store/_repro_rules.py)
    repro_of: str | None
    # a sealed run's amended summary values (store/_amend.py); {} when none
    amended: dict[str, Any]
    # get_run only
    artifacts: NotRequired[list[dict[str, Any]]]
    used_artifacts: NotRequired[list[dict[str, Any]]]
    edits: NotRequired[list[dict[str, Any]]]
    record_sha256: NotRequired[str | None]
    # added by readers that ask for them
    repro: NotRequired[Any]
    children: NotRequired[list[Any]]


class ExportRecord(TypedDict):
    """What an export reads of one run (:class:`RunExport`): of the env only git's commit,
    dirty flag and patch digest (``git_*``).

    ``config``, ``summary`` and ``tags`` are the stored JSON documents (non-finite floats
    still as ``{"$float": …}``); ``metrics`` maps each series to its last value."""

    id: str
    project: str
    name: str
    status: str
    created_at: float
    ended_at: float | None
    heartbeat_at: float | None
    seed: int | None
    tags: list[str]
    config: dict[str, Any]
    summary: dict[str, Any]
    author: str | None
    metrics: dict[str, float | None]
    # a sealed run's amended summary values (key -> value), {} when none (store/_amend.py)
    amended: dict[str, Any]
    datasets: list[dict[str, Any]]
    git_commit: str | None
    git_dirty: bool | None
    git_patch: str | None
    # rich results: key -> "sha256:…" of the value logged last (docs/results.md)
    media: dict[str, str]
    # rich results: key -> {"step", "kind", "sha256", "size", "count"}: the reference to
    # the value logged last (its bytes are in the artifact blob store) and how many there are
    media_refs: NotRequired[dict[str, dict[str, Any]]]
    # the env's packages (name -> version); only from iter_export_records(packages=True)
    packages: NotRequired[dict[str, Any]]


@runtime_checkable
class RunStore(Protocol):
    """Runs and their series: what the writer writes and readers read.

    Run records are :class:`RunRecord` (the JSON fields of ``labledger show --json``).
    """

    uri: str

    def create_run(self, run: dict[str, Any]) -> None: ...

    def write_batch(self, batch: Batch, *, actor: str | None = None, late: bool = False) -> bool:
        """Apply ``batch`` atomically; return False when it was applied before.

        ``actor`` names who writes (the edit events of a finished run name them); a
        back end that decides that itself (the HTTP client: the server knows the token's
        user) ignores it. ``late=True`` (replaying a local outbox) admits points logged
        before the run ended, as a ``late`` audit entry; the HTTP client ignores it too
        (the server applies its own rule). The rules about who may write live in
        ``store._core``."""
        ...

    def get_run(self, ref: str) -> RunRecord:
        """Return the run whose id is ``ref`` or starts with it (RunNotFoundError, AmbiguousRunError)."""
        ...

    def resolve_run_id(self, ref: str) -> str: ...

    def list_runs(
        self,
        *,
        project: str | None = None,
        filter: str | Node | None = None,
        order_by: str | list[str] | None = None,
        limit: int | None = None,
        offset: int = 0,
        projects: Sequence[str] | None = None,
    ) -> list[RunRecord]:
        """Runs newest first (or by ``order_by``); ``projects`` keeps those projects only
        (the server's read permission)."""
        ...

    def count_runs(
        self,
        *,
        project: str | None = None,
        filter: str | Node | None = None,
        projects: Sequence[str] | None = None,
        cap: int | None = None,
    ) -> int: ...

    def history(self, run_id: str, key: str, max_points: int | None = None) -> History: ...

    def metric_keys(self, run_id: str) -> list[str]: ...

    def projects(self) -> list[dict[str, Any]]: ...

    def media(
        self,
        run_id: str,
        key: str | None = None,
        *,
        step: int | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """A run's rich results (key, step, seq, kind, sha256, size, caption, meta, ts),
        ordered by key, step, seq; of one ``key`` / ``step`` when given; paged."""
        ...

    def media_keys(self, run_id: str) -> list[dict[str, Any]]:
        """Per key of a run's rich results: key, kind, count, steps, first/last step."""
        ...

    def media_steps(self, run_id: str, key: str) -> list[int]: ...

    def media_blob(self, run_id: str, sha256: str) -> bytes:
        """The bytes of one of the run's rich results."""
        ...

    def put_blob(self, data: bytes) -> str:
        """Store small content-addressed bytes (patches, snapshots); return the sha256."""
        ...

    def get_blob(self, sha256: str) -> bytes: ...

    def reap_stale_runs(self, heartbeat_timeout: float | None = None) -> list[str]:
        """Mark runs whose writer is gone as crashed; return their ids."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class RunExport(Protocol):
    """A bulk read for ``labledger export``: only what an export needs, in a few queries
    (SqlStore; a store without it is read through ``list_runs``)."""

    def export_records(
        self,
        *,
        project: str | None = None,
        filter: str | Node | None = None,
        order_by: str | list[str] | None = None,
        limit: int | None = None,
    ) -> list[ExportRecord]: ...

    def iter_export_records(
        self,
        *,
        project: str | None = None,
        filter: str | Node | None = None,
        metrics: Sequence[str] | None = None,
        media: bool = True,
        packages: bool = False,
        page: int = 2000,
    ) -> Iterator[ExportRecord]:
        """The same records as a stream of keyset pages (newest first), each page's metrics,
        media and amendments read in bulk; ``metrics`` narrows the metric keys read."""
        ...

    def iter_run_columns(
        self,
        *,
        project: str | None = None,
        filter: str | Node | None = None,
        metric: str,
        packages: bool = False,
        page: int = 5000,
    ) -> Iterator[dict[str, list[Any]]]:
        """What ``importance`` reads of the same runs, a dict of columns per page of
        ``page`` runs (``id, project, value, config, datasets, commit, patch[, packages]``),
        newest first; the SQL store reads them with one statement."""
        ...


@runtime_checkable
class ArtifactCatalog(Protocol):
    """Artifact metadata: versions, aliases, lineage (bytes live in a labledger.artifacts
    BlobStore; see docs/artifacts.md)."""

    uri: str

    def create_artifact_version(
        self,
        project: str,
        name: str,
        kind: str,
        run_id: str | None,
        manifest: Sequence[dict[str, Any]],
        metadata: dict[str, Any] | None = None,
        *,
        storage: str | None = None,
        late: bool = False,
    ) -> dict[str, Any]:
        """Register version v0, v1, ... of ``project/name`` (manifest: ``[{path, sha256, size}]``); moves ``latest``.

        ``late``: logged before the run ended, uploaded from a spool (admitted into an ended run)."""
        ...

    def get_artifact_version(self, project: str, ref: str) -> dict[str, Any]:
        """Resolve ``name``, ``name:v3``, ``name:alias`` or ``project/name:alias`` (ArtifactNotFoundError)."""
        ...

    def get_artifact_version_by_id(self, version_id: str) -> dict[str, Any]: ...

    def list_artifact_versions(
        self, project: str | None = None, name: str | None = None
    ) -> list[dict[str, Any]]: ...

    def list_run_artifacts(self, run_id: str) -> dict[str, list[dict[str, Any]]]:
        """``{"produced": [...], "consumed": [...]}`` version dicts of one run."""
        ...

    def set_artifact_alias(
        self, project: str, name: str, version: int, alias: str
    ) -> dict[str, Any]: ...

    def record_artifact_use(self, run_id: str, version_id: str) -> None: ...

    def artifact_consumers(self, version_id: str) -> list[str]:
        """Ids of the runs that used a version."""
        ...

    def delete_artifact_version(self, project: str, ref: str) -> dict[str, Any]: ...

    def referenced_blob_shas(self) -> set[str]:
        """Every blob sha256 still referenced by an artifact version (gc keeps these)."""
        ...


@runtime_checkable
class ReproVerdicts(Protocol):
    """The verdicts of ``labledger repro``, linked to the original run and its reproduction."""

    uri: str

    def add_repro_verdict(self, verdict: dict[str, Any], *, by: str | None = None) -> str:
        """Store one ``labledger repro`` verdict (linked to the original and the reproduction); return its id.

        A verdict exists only with its reproduction run; the store re-derives it from the
        two runs and records ``by`` (who reproduced; a server records its caller)."""
        ...

    def repro_verdicts(self, run_ids: Sequence[str]) -> list[dict[str, Any]]:
        """Verdicts in which any of ``run_ids`` is the original or the reproduction, newest first."""
        ...


@runtime_checkable
class AuditTrail(Protocol):
    """Trust: edits as events and the per-project audit chain (see store/_audit_sql.py, docs/trust.md)."""

    uri: str

    def edit_run(
        self,
        ref: str,
        *,
        notes: str | None = None,
        add_tags: Sequence[str] = (),
        remove_tags: Sequence[str] = (),
        summary: dict[str, Any] | None = None,
        actor: str | None = None,
        reason: str | None = None,
    ) -> list[dict[str, Any]]:
        """Edit notes, tags or explicit summary values; return the stored edit events.

        On a sealed run a summary change is an amendment (the sealed value stays stored,
        see store/_amend.py); ``reason`` is kept with each edit event."""
        ...

    def verify_run(self, ref: str) -> dict[str, Any]:
        """One run's record checked against its newest audit entry."""
        ...

    def audit_verify(self, project: str | None = None, head: str | None = None) -> dict[str, Any]:
        """Re-derive every hash of the audit chain (of ``project``, else of every project)."""
        ...

    def audit_head(self, project: str | None = None) -> list[dict[str, Any]]:
        """``[{project, seq, head}]``: the newest entry hash of each project's chain."""
        ...


@runtime_checkable
class Store(RunStore, ArtifactCatalog, ReproVerdicts, AuditTrail, Protocol):
    """Every role at once: what a back end (SqlStore, HttpStore) implements.

    Code that needs one role asks for that protocol (the server's artifact routes take an
    ArtifactCatalog, the write routes a RunStore, the trust routes an AuditTrail), so a back end or a route module depends
    only on what it uses.
    """


@runtime_checkable
class MlflowObjects(Protocol):
    """MLflow's own objects (experiments, logged models) kept beside the runs."""

    uri: str

    def mlflow_object(self, kind: str, object_id: str) -> dict[str, Any] | None: ...

    def mlflow_objects(
        self, kind: str, *, project: str | None = None, run_id: str | None = None
    ) -> list[dict[str, Any]]: ...

    def put_mlflow_object(
        self,
        kind: str,
        object_id: str,
        project: str,
        data: dict[str, Any],
        *,
        run_id: str | None = None,
        create_only: bool = False,
    ) -> bool: ...

    def delete_mlflow_object(self, kind: str, object_id: str) -> None: ...

    def rename_project(self, old: str, new: str) -> None: ...


@runtime_checkable
class ModelRegistry(Protocol):
    """Registered models whose versions point at finished runs' artifact versions
    (store/_registry_sql.py); the rules (who registers, who moves an alias) are the
    write core's. A missing model, version, alias or tag raises NotFoundError."""

    uri: str

    def create_registered_model(
        self,
        name: str,
        *,
        project: str | None = None,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        author: str | None = None,
    ) -> dict[str, Any]: ...

    def registered_model(self, name: str) -> dict[str, Any]: ...

    def registered_models(self, projects: Sequence[str] | None = None) -> list[dict[str, Any]]: ...

    def update_registered_model(
        self,
        name: str,
        *,
        new_name: str | None = None,
        description: Any = ...,
        set_tags: Mapping[str, str] | None = None,
        delete_tags: Sequence[str] = (),
    ) -> dict[str, Any]: ...

    def delete_registered_model(self, name: str) -> None: ...

    def create_model_version(
        self,
        name: str,
        *,
        run_id: str,
        artifact_version_id: str,
        project: str,
        source: str | None = None,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        author: str | None = None,
    ) -> dict[str, Any]: ...

    def model_version(self, name: str, version: int) -> dict[str, Any]: ...

    def model_version_by_alias(self, name: str, alias: str) -> dict[str, Any]: ...

    def model_versions(
        self, name: str | None = None, *, run_id: str | None = None
    ) -> list[dict[str, Any]]: ...

    def update_model_version(
        self,
        name: str,
        version: int,
        *,
        description: Any = ...,
        set_tags: Mapping[str, str] | None = None,
        delete_tags: Sequence[str] = (),
    ) -> dict[str, Any]: ...

    def delete_model_version(self, name: str, version: int) -> None: ...

    def set_model_alias(
        self, name: str, alias: str, version: int | None, *, actor: str | None = None
    ) -> dict[str, Any]: ...

    def model_alias_events(self, name: str) -> list[dict[str, Any]]:
        """Every alias move of ``name``, oldest first (the edit events, by their actor)."""
        ...


@runtime_checkable
class AccessControl(Protocol):
    """Who may do what: tokens, roles, project policies, runs looked up for one caller.

    Storage only; the rules that use it are in ``store._core`` (``WriteCore``)."""

    uri: str

    def project_policy(self, project: str) -> list[str]: ...

    def set_project_policy(self, project: str, require: Sequence[str]) -> None: ...

    def resolve_run_among(self, ref: str, projects: Sequence[str]) -> tuple[str, str]:
        """``(run_id, project)`` of ``ref`` among the runs of ``projects`` only."""
        ...

    def run_owner(self, run_id: str) -> tuple[str, str | None]:
        """``(project, author)`` of one run."""
        ...

    def tokens_exist(self) -> bool: ...

    def token_identity(self, token_sha256: str) -> tuple[str, str, dict[str, str]] | None: ...

    def add_token(
        self,
        token_id: str,
        user: str,
        token_sha256: str,
        project: str,
        role: str,
        note: str | None = None,
    ) -> None: ...

    def grant_role(self, user: str, project: str, role: str) -> None: ...

    def revoke_token(
        self, *, token_id: str | None = None, token_sha256: str | None = None
    ) -> bool: ...

    def list_tokens(self) -> list[dict[str, Any]]: ...


@runtime_checkable
class ServerStore(Store, AccessControl, MlflowObjects, ModelRegistry, Protocol):
    """What the tracking server needs of its back end (``SqlStore``): every role of
    ``Store`` plus access control and MLflow's objects, and runs listed over several
    projects (the ones a caller may read: ``list_runs(projects=...)``)."""

    compact_in_background: bool  # the server compacts series off the request threads


@runtime_checkable
class TokenBearer(Protocol):
    """Role of a store that speaks for a caller with a token (``HttpStore``): what it starts
    on that caller's behalf (a reproduction's re-run) gets the same token."""

    token: str | None
