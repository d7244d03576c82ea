#!/usr/bin/env python3
"""Run MLflow's own REST tracking tests against ``labledger server`` (or MLflow's server).

MLflow's tests are not in the ``mlflow`` wheel, and this script fetches nothing: give it
a tree holding MLflow's ``tests/`` (and its ``pyproject.toml``, for pytest's settings) at
the version closest to the pinned client (``constraints.txt``: mlflow==3.17.2), plus
``pytest-asyncio`` in the same environment (MLflow's tests use its marker).

    .venv/bin/python scripts/mlflow_conformance.py --mlflow-src ../mlflow --server mlflow \\
        --out mlflow.json                                         # MLflow's own server
    .venv/bin/python scripts/mlflow_conformance.py --mlflow-src ../mlflow \\
        --baseline mlflow.json                                    # labledger, and the ratio

The figure in benchmarks/README.md was measured on MLflow's ``master`` at commit
a89bed67689f916c79a8e1c1ad6cfb5cd7649c77 (version 3.11.2.dev0, the newest snapshot at
hand; no 3.17.2 tag was reachable), with the pinned client mlflow 3.17.2 installed. The
tree used holds, unchanged, ``pyproject.toml``, ``tests/__init__.py``, ``tests/conftest.py``,
``tests/helper_functions.py``, ``tests/simple_repository_server.py`` (imported by a
session fixture), ``tests/integration/{__init__,utils}.py``,
``tests/autologging/{__init__,fixtures}.py``, ``tests/tracing/{__init__,helper}.py`` and
``tests/tracking/{__init__,conftest,integration_test_utils,test_rest_tracking}.py``.
Nothing of MLflow's conftest was trimmed or stubbed: it imports and runs as is.

How: this file is also a pytest plugin (loaded with ``-p``). MLflow's ``mlflow_client``
fixture serves MLflow's FastAPI app in a thread (``integration_test_utils.ServerThread``);
other tests start a server with ``integration_test_utils._init_server``. With
``--server labledger`` both are replaced, before the tests are imported, by a
``labledger server`` on a fresh SQLite store and artifact directory (one per test, as
MLflow's own fixture does); the tests then talk to it through the real client and REST.
MLflow's conftest points the in-process client (fluent API, CLI) at the very database its
server serves (``tracking_uri_mock``); with labledger the in-process client is pointed at
the server instead. Nothing the tests exercise is stubbed. Every test's outcome is written to ``--out``
(JSON), so two runs can be compared test by test (``--baseline``).

Scope: the groups in OUT_OF_SCOPE are not an experiment tracker's job and are deselected
by name; DELIBERATE lists tests that fail because labledger keeps a rule of its own on
purpose (docs/migrating.md): they are run but counted apart. The in-scope figure is the
rest (tests MLflow marks ``xfail`` are not counted); the ratio is the share of the in-scope
tests MLflow's own server passes that labledger passes too. ``--report-only --out FILE``
prints the table again from an earlier run's outcomes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

TEST_FILE = "tests/tracking/test_rest_tracking.py"

# test-name fragment -> why it is out of scope for labledger
OUT_OF_SCOPE = {
    "gateway": "MLflow AI gateway (LLM endpoints, secrets), not tracking",
    "trace": "GenAI traces and spans (MLflow tracing)",
    "span": "GenAI traces and spans (MLflow tracing)",
    "assessment": "GenAI trace assessments and feedback",
    "evaluation_dataset": "GenAI evaluation datasets",
    "dataset_record": "GenAI evaluation datasets",
    "experiments_rest": "GenAI evaluation datasets linked to experiments (mlflow.genai.datasets)",
    "at_once_rest": "GenAI evaluation datasets linked to experiments (mlflow.genai.datasets)",
    "dataset_experiment_association": "GenAI evaluation datasets linked to experiments",
    "scorer": "GenAI scorers / judges",
    "prompt": "prompt registry (GenAI)",
    "issue": "GenAI issues",
    "webhook": "model-registry webhooks (outgoing HTTP calls)",
    "graphql": "MLflow UI's GraphQL endpoint",
    "workspace": "MLflow workspaces (multi-tenant server mode)",
    "otel": "OpenTelemetry trace ingestion",
}

# fixture -> why the tests that use it (or that use none of "mlflow_client") are out of scope
OUT_OF_SCOPE_FIXTURES = {
    "mlflow_client_with_secrets": "AI gateway secrets, endpoints and providers (encrypted store)",
    "(no mlflow_client)": "does not talk to a tracking server: MLflow's handlers in-process, "
    "or its own `mlflow server` CLI",
}

# test name -> why labledger fails it on purpose (run, but counted apart)
DELIBERATE: dict[str, str] = {
    "test_create_run_all_args": "user_id is the authenticated caller (`anonymous` on a server"
    " without tokens), never the client's mlflow.user claim, which stays a tag",
    "test_create_run_defaults": "user_id is the authenticated caller, not the client's `unknown`",
    "test_artifacts": "expects the server's --default-artifact-root (file://) as the artifact"
    " location: labledger serves artifacts only through its proxy (mlflow-artifacts:),"
    " content-addressed",
    "test_create_model_version_with_file_uri": "same: a run's artifact_uri is the proxy's"
    " mlflow-artifacts: URI, never the server's local directory",
    "test_create_logged_model": "source_run_id='123' names no run: a logged model's source run"
    " must exist and be readable (its lineage stays checkable)",
    "test_create_model_version_model_id": "registers a logged model that has no source run: a"
    " labledger model version points at a run's content-addressed artifact",
    "test_get_metric_history_bulk_returns_expected_metrics_in_expected_order": "logs step -2:"
    " labledger's steps count from 0 (Run.log refuses a negative step too)",
    "test_logging_model_with_local_artifact_uri": "expects a file:// artifact_uri: labledger"
    " serves artifacts only through its proxy (mlflow-artifacts:)",
    "test_create_model_version_with_path_source": "registers a version of a RUNNING run from"
    " the server's local artifact directory: a version points at a finished run's proxied,"
    " content-addressed artifact",
    "test_update_run_name_without_changing_status": "renames a FINISHED run: labledger seals"
    " a finished run's record (INVALID_STATE, with the reason)",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(port: int, proc: subprocess.Popen[Any], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"labledger server exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError("labledger server did not start")


@contextlib.contextmanager
def _labledger_server() -> Iterator[str]:
    tmp = Path(tempfile.mkdtemp(prefix="ll-conformance-"))
    port = _free_port()
    cmd = [
        sys.executable,
        "-m",
        "labledger.cli",
        "server",
        "--backend-uri",
        f"sqlite:///{tmp / 'store.db'}",
        "--artifacts-uri",
        str(tmp / "blobs"),
        "--port",
        str(port),
        "--no-ui",
        "--log-level",
        "warning",
    ]
    log = (tmp / "server.log").open("wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait(port, proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()
        if not os.environ.get("LL_CONFORMANCE_KEEP"):
            shutil.rmtree(tmp, ignore_errors=True)


# -- the pytest plugin half (loaded in the pytest process with -p) ---------------------------


class _LabledgerServerThread:
    """Stands in for MLflow's ``ServerThread(app, port)``: serves labledger instead."""

    def __init__(self, app: Any = None, port: int | None = None) -> None:
        self._cm = _labledger_server()
        self.url = ""

    def __enter__(self) -> str:
        self.url = self._cm.__enter__()
        # MLflow's fixtures point the in-process client (fluent API, CLI) at the database
        # its server serves (tracking_uri_mock); here that store is the server
        import mlflow

        mlflow.set_tracking_uri(self.url)
        return self.url

    def __exit__(self, *exc: Any) -> None:
        self._cm.__exit__(*exc)


@contextlib.contextmanager
def _labledger_init_server(*args: Any, **kwargs: Any) -> Iterator[str]:
    with _labledger_server() as url:
        yield url


def pytest_configure(config: Any) -> None:
    if os.environ.get("LL_CONFORMANCE_SERVER", "labledger") != "labledger":
        return
    import tests.tracking.integration_test_utils as itu  # from the MLflow tree

    itu.ServerThread = _LabledgerServerThread
    itu._init_server = _labledger_init_server


def pytest_collection_modifyitems(session: Any, config: Any, items: list[Any]) -> None:
    keep, drop = [], []
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if "mlflow_client_with_secrets" in names or "mlflow_client" not in names:
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


_OUTCOMES: dict[str, str] = {}


def pytest_runtest_logreport(report: Any) -> None:
    name = report.nodeid.split("::", 1)[-1]
    if getattr(report, "wasxfail", None) is not None:  # marked xfail by MLflow: not counted
        _OUTCOMES[name] = "xfail"
    elif report.when == "call" or report.outcome != "passed":
        if report.skipped:
            _OUTCOMES.setdefault(name, "skipped")
        elif report.failed:
            _OUTCOMES[name] = "failed" if report.when == "call" else "error"
        else:
            _OUTCOMES.setdefault(name, "passed")


def pytest_sessionfinish(session: Any, exitstatus: int) -> None:
    out = os.environ.get("LL_CONFORMANCE_OUT")
    if out:
        Path(out).write_text(json.dumps(_OUTCOMES, indent=1, sort_keys=True) + "\n")


# -- the command ------------------------------------------------------------------------------


def _base(name: str) -> str:
    return name.split("[", 1)[0]


def _count(outcomes: dict[str, str], names: set[str]) -> tuple[int, int]:
    passed = sum(1 for n in names if outcomes.get(n) == "passed")
    failed = sum(1 for n in names if outcomes.get(n) in ("failed", "error"))
    return passed, failed


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--mlflow-src", required=True, type=Path, help="tree with MLflow's tests/")
    ap.add_argument("--server", choices=["labledger", "mlflow"], default="labledger")
    ap.add_argument("--out", type=Path, default=None, help="write each test's outcome (JSON)")
    ap.add_argument("--baseline", type=Path, default=None, help="--out of MLflow's server's run")
    ap.add_argument(
        "--report-only",
        action="store_true",
        help="run nothing: print the table from an earlier run's --out",
    )
    ap.add_argument("pytest_args", nargs="*", help="extra pytest arguments")
    args = ap.parse_args()
    test_file = args.mlflow_src / TEST_FILE
    if args.report_only:
        if args.out is None or not args.out.is_file():
            print("--report-only needs --out FILE of an earlier run", file=sys.stderr)
            return 2
    elif not test_file.is_file():
        print(f"{test_file} not found: give a tree with MLflow's tests", file=sys.stderr)
        return 2
    out = args.out or Path(tempfile.mkdtemp(prefix="ll-conformance-")) / f"{args.server}.json"
    deselect = " or ".join(sorted(set(OUT_OF_SCOPE)))
    env = dict(
        os.environ,
        LL_CONFORMANCE_SERVER=args.server,
        LL_CONFORMANCE_OUT=str(out.resolve()),
        PYTHONPATH=os.pathsep.join(
            [str(args.mlflow_src.resolve()), str(Path(__file__).resolve().parent)]
            + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        ),
    )
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "--color=no",
        "-p",
        "mlflow_conformance",
        "-p",
        "no:cacheprovider",
        TEST_FILE,
        "-k",
        f"not ({deselect})",
        *args.pytest_args,
    ]
    print("out of scope (deselected by name):")
    for key, why in sorted(OUT_OF_SCOPE.items()):
        print(f"  {key:32} {why}")
    for key, why in sorted(OUT_OF_SCOPE_FIXTURES.items()):
        print(f"  {key:32} {why}")
    print("deliberate differences (run, counted apart):")
    for key, why in sorted(DELIBERATE.items()):
        print(f"  {key:32} {why}")
    proc = None
    if not args.report_only:
        out.unlink(missing_ok=True)  # never report an earlier run's outcomes
        proc = subprocess.run(cmd, cwd=args.mlflow_src, env=env, capture_output=True, text=True)
    if proc is not None and not out.is_file():
        print(proc.stdout[-4000:], proc.stderr[-4000:])
        return 1
    outcomes: dict[str, str] = json.loads(out.read_text())
    ran = {n for n, o in outcomes.items() if o not in ("skipped", "xfail")}
    deliberate = {n for n in ran if _base(n) in DELIBERATE}
    scope = ran - deliberate
    passed, failed = _count(outcomes, scope)
    rows = [(args.server, passed, failed)]
    print(f"\noutcomes: {out}")
    if args.baseline:
        base: dict[str, str] = json.loads(args.baseline.read_text())
        bscope = {
            n
            for n, o in base.items()
            if o not in ("skipped", "xfail")
            and _base(n) not in DELIBERATE
            and not any(k in n for k in OUT_OF_SCOPE)  # a baseline run with an older list
        }
        bpassed, bfailed = _count(base, bscope)
        rows.append(("mlflow (baseline)", bpassed, bfailed))
    print(f"\n{'server':20} {'in scope':>9} {'passed':>7} {'failed':>7}")
    for name, p, f in rows:
        print(f"{name:20} {p + f:9d} {p:7d} {f:7d}")
    if deliberate:
        dp, df = _count(outcomes, deliberate)
        print(f"{'deliberate diffs':20} {dp + df:9d} {dp:7d} {df:7d}")
    if args.baseline:
        bdel = {n for n, o in base.items() if o not in ("skipped", "xfail")} & {
            n for n in base if _base(n) in DELIBERATE
        }
        dp, df = _count(base, bdel)
        print(f"{'  on mlflow':20} {dp + df:9d} {dp:7d} {df:7d}")
    if args.baseline:
        bpass = {n for n in bscope if base.get(n) == "passed"}
        both = sum(1 for n in bpass if outcomes.get(n) == "passed")
        print(
            f"\nratio: {args.server} passes {both} of the {len(bpass)} in-scope tests MLflow's own"
            f" server passes = {100 * both / max(len(bpass), 1):.1f}%"
        )
        missing = sorted(n for n in bpass if outcomes.get(n) != "passed")
        if missing:
            print("failing here, passing on MLflow's server:")
            for n in missing:
                print(f"  {n}")
    else:
        for n in sorted(n for n in scope if outcomes.get(n) != "passed"):
            print(f"  {outcomes[n]:7} {n}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
