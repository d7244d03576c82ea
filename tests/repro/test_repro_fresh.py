"""`labledger repro --env fresh`: a virtual environment with the recorded versions, built offline."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from _rhelpers import Project, git

from labledger.store import open_store

SCRIPT = """\
import numpy as np
import tinydep

import labledger

run = labledger.init(seed=1234)
rng = np.random.default_rng(1234)
x = rng.normal(size=100) * tinydep.FACTOR
run.log({"score": float(np.mean(x ** 2))})
run.summary["factor"] = tinydep.FACTOR
"""


def _build_wheel(tmp: Path) -> Path:
    """A real wheel of a throwaway package, built offline with `pip wheel`."""
    src = tmp / "tinydep-src"
    (src / "tinydep").mkdir(parents=True)
    (src / "tinydep" / "__init__.py").write_text("FACTOR = 3\n")
    (src / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n\n'
        '[project]\nname = "tinydep"\nversion = "1.0.0"\n'
    )
    wheels = tmp / "wheels"
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--disable-pip-version-check",
            "-w",
            str(wheels),
            str(src),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    assert [p.name for p in wheels.iterdir()] == ["tinydep-1.0.0-py3-none-any.whl"]
    return src


def _set_packages(
    store_uri: str, run_id: str, packages: dict[str, str], sources: dict[str, object]
) -> None:
    """Record a small package set on the run (its real capture lists the whole host venv)."""
    _patch_recorded_env(store_uri, run_id, {"packages": packages, "package_sources": sources})


def _patch_recorded_env(store_uri: str, run_id: str, fields: dict[str, object]) -> None:
    """Rewrite the run's recorded env behind labledger's back: a finished run is frozen
    (docs/trust.md), and these tests need a recorded environment unlike this one."""
    import sqlalchemy as sa

    from labledger._values import encode_json
    from labledger.store import _schema as s

    store = open_store(store_uri)
    try:
        env = {**store.get_run(run_id)["env"], **fields}
        with store._tx() as conn:  # type: ignore[attr-defined]
            conn.execute(
                sa.update(s.runs).where(s.runs.c.id == run_id).values(env=encode_json(env))
            )
    finally:
        store.close()


@pytest.fixture
def fresh_project(project: Project, tmp_path: Path) -> tuple[Project, str, Path]:
    src = _build_wheel(tmp_path)
    (project.repo / "score.py").write_text(SCRIPT)
    git(project.repo, "add", "score.py")
    subprocess.run(["git", "commit", "-qm", "score"], cwd=project.repo, env=project.env, check=True)
    # the original run imports tinydep from its source folder
    run_id = project.train("score.py", env={"PYTHONPATH": str(src)})
    return project, run_id, tmp_path / "wheels"


def test_fresh_env_reports_packages_that_cannot_be_installed(
    fresh_project: tuple[Project, str, Path],
) -> None:
    project, run_id, wheels = fresh_project
    _set_packages(
        project.store_uri,
        run_id,
        {"tinydep": "1.0.0", "ghostpkg": "9.9.9", "mylib": "0.1"},
        {
            "mylib": {
                "editable": True,
                "url": "file:///somewhere/else/mylib",
                "vcs": None,
                "commit": None,
            }
        },
    )
    rc, plan, _ = project.repro(run_id, "--env", "fresh", "--dry-run")
    assert rc == 0
    assert plan["plan"]["fresh"]["requirements"] == ["ghostpkg==9.9.9", "tinydep==1.0.0"]
    assert (
        "editable install from file:///somewhere/else/mylib"
        in plan["plan"]["fresh"]["not_installable"]["mylib"]
    )

    # the editable install blocks the run; with --force the build reports ghostpkg too
    rc, blocked, _ = project.repro(
        run_id, "--env", "fresh", "--no-index", "--find-links", str(wheels)
    )
    assert rc == 1 and blocked["verdict"] == "not-reproducible"
    assert "package mylib cannot be installed: editable install" in blocked["reason"]

    _set_packages(project.store_uri, run_id, {"tinydep": "1.0.0", "ghostpkg": "9.9.9"}, {})
    rc, failed, err = project.repro(
        run_id, "--env", "fresh", "--no-index", "--find-links", str(wheels)
    )
    # a package that would not install is a setup failure: reported, not stored as a verdict
    assert rc == 1 and failed["verdict"] == "could-not-rerun"
    assert "package ghostpkg==9.9.9 could not be installed" in failed["reason"]
    assert failed["verdict_id"] is None
    assert failed["fresh_env"]["installed"] == ["tinydep==1.0.0"]
    assert list(failed["fresh_env"]["failed"]) == ["ghostpkg==9.9.9"]
    assert "could not install ghostpkg==9.9.9" in err


def test_fresh_env_reproduces_with_the_recorded_versions_and_is_cached(
    fresh_project: tuple[Project, str, Path], tmp_path: Path
) -> None:
    project, run_id, wheels = fresh_project
    _set_packages(project.store_uri, run_id, {"tinydep": "1.0.0"}, {})

    rc, first, _ = project.repro(
        run_id, "--env", "fresh", "--no-index", "--find-links", str(wheels)
    )

    assert rc == 0, first
    assert first["verdict"] == "reproduced"
    env_dir = Path(first["fresh_env"]["path"])
    assert first["fresh_env"]["cached"] is False
    assert env_dir.parent == tmp_path / "cache" / "envs"
    new = project.cli_json("show", first["repro_run_id"], "--json")
    # it really ran in the new venv, with tinydep installed from the wheel (not from PYTHONPATH)
    assert new["env"]["python"]["executable"].startswith(str(env_dir))
    assert new["env"]["packages"]["tinydep"] == "1.0.0"
    assert new["summary"]["factor"] == 3

    rc, second, _ = project.repro(
        run_id, "--env", "fresh", "--no-index", "--find-links", str(wheels)
    )
    assert rc == 0 and second["verdict"] == "reproduced"
    assert second["fresh_env"]["cached"] is True
    assert second["fresh_env"]["path"] == str(env_dir)
