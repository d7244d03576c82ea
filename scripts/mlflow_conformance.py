#!/usr/bin/env python3
"""Run MLflow's own REST tracking tests against ``labledger server`` (or MLflow's server).

MLflow's tests are not in the ``mlflow`` wheel, and this script fetches nothing: give it
a checkout of MLflow's repository at the tag of the pinned client (``constraints.txt``:
mlflow==3.17.2), e.g. ``git clone --depth 1 -b v3.17.2 https://github.com/mlflow/mlflow``
done once by hand, plus MLflow's test requirements in the same environment.

    .venv/bin/python scripts/mlflow_conformance.py --mlflow-src ../mlflow            # labledger
    .venv/bin/python scripts/mlflow_conformance.py --mlflow-src ../mlflow --server mlflow

How: a pytest plugin (this file, loaded with ``-p``) replaces the helper MLflow's tests
use to start a server (``tests.tracking.integration_test_utils._init_server``) with one
that starts ``labledger server`` on a fresh SQLite store; the tests then talk to it
through the real client. The groups below are out of scope (not an experiment tracker's
job) and are deselected by name, with the reason; the script prints passed / failed /
errors of the rest, and the share of MLflow's own server's figure when given
``--baseline PASSED``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
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
    "gateway": "MLflow AI gateway (LLM endpoints), not tracking",
    "trace": "GenAI traces and spans (MLflow tracing)",
    "span": "GenAI traces and spans (MLflow tracing)",
    "assessment": "GenAI trace assessments and feedback",
    "evaluation_dataset": "GenAI evaluation datasets",
    "dataset_record": "GenAI evaluation datasets",
    "scorer": "GenAI scorers / judges",
    "prompt": "prompt registry (GenAI)",
    "issue": "GenAI issues",
    "webhook": "model-registry webhooks (outgoing HTTP calls)",
    "graphql": "MLflow UI's GraphQL endpoint",
    "workspace": "MLflow workspaces (multi-tenant server mode)",
    "otel": "OpenTelemetry trace ingestion",
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
        time.sleep(0.2)
    raise RuntimeError("labledger server did not start")


def _start_labledger() -> tuple[str, subprocess.Popen[Any]]:
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
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait(port, proc)
    return f"http://127.0.0.1:{port}", proc


# -- the pytest plugin half (loaded in the pytest process with -p) ---------------------------


def pytest_configure(config: Any) -> None:
    if os.environ.get("LL_CONFORMANCE_SERVER", "labledger") != "labledger":
        return
    import tests.tracking.integration_test_utils as itu  # from the MLflow checkout

    original = itu._init_server
    if getattr(original, "__wrapped__", None) is not None:  # a context manager (newer MLflow)

        @contextlib.contextmanager
        def init_cm(*args: Any, **kwargs: Any) -> Iterator[str]:
            url, proc = _start_labledger()
            try:
                yield url
            finally:
                proc.terminate()
                proc.wait(30)

        itu._init_server = init_cm
    else:  # returns (url, process)

        def init_tuple(*args: Any, **kwargs: Any) -> tuple[str, Any]:
            return _start_labledger()

        itu._init_server = init_tuple


# -- the command ------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mlflow-src", required=True, type=Path, help="MLflow checkout (v3.17.2)")
    ap.add_argument("--server", choices=["labledger", "mlflow"], default="labledger")
    ap.add_argument("--baseline", type=int, default=None, help="MLflow server's passed count")
    ap.add_argument("pytest_args", nargs="*", help="extra pytest arguments")
    args = ap.parse_args()
    test_file = args.mlflow_src / TEST_FILE
    if not test_file.is_file():
        print(f"{test_file} not found: give a checkout of MLflow's repository", file=sys.stderr)
        return 2
    deselect = " or ".join(sorted(set(OUT_OF_SCOPE)))
    env = dict(
        os.environ,
        LL_CONFORMANCE_SERVER=args.server,
        PYTHONPATH=os.pathsep.join([str(args.mlflow_src), str(Path(__file__).parent)]),
    )
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
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
        print(f"  {key:20} {why}")
    proc = subprocess.run(cmd, cwd=args.mlflow_src, env=env, capture_output=True, text=True)
    tail = proc.stdout.strip().splitlines()[-1:] or [""]
    print(proc.stdout[-4000:])
    counts = {k: int(v) for v, k in re.findall(r"(\d+) (passed|failed|errors?)", tail[0])}
    passed = counts.get("passed", 0)
    failed = counts.get("failed", 0) + counts.get("error", 0) + counts.get("errors", 0)
    print(f"{args.server}: {passed} passed, {failed} failed or errors (in scope)")
    if args.baseline:
        print(f"{100 * passed / args.baseline:.0f}% of MLflow's own server's {args.baseline}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
