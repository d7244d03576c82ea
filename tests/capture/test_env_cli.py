"""env_diff, the `labledger env` commands, requirements output, secrets policy, rendering."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from _caphelpers import Script, cli, git, json_out, load_run
from packaging.requirements import Requirement

from labledger.capture.diff import env_diff, patch_files
from labledger.capture.packages import requirements
from labledger.capture.secrets import allowed_env_vars, redact_argv, strip_url_credentials

RUN = """
import sys, labledger
run = labledger.init("cap", seed=int(sys.argv[1]))
run.log_dataset("data.csv")
run.finish()
print(run.id)
"""


def _two_runs(repo: Path, script: Script) -> tuple[str, str]:
    (repo / "data.csv").write_text("1,2\n")
    a = script.run(RUN, cwd=repo, name="exp.py", args=["1"]).stdout.strip()
    (repo / "lib.py").write_text("X = 42\n")
    (repo / "data.csv").write_text("1,3\n")
    b = script.run(RUN, cwd=repo, name="exp.py", args=["2"]).stdout.strip()
    return a, b


def test_env_diff_cli_reports_patch_seed_and_dataset_differences(
    repo: Path, script: Script, store_uri: str
) -> None:
    a, b = _two_runs(repo, script)
    out = json_out(cli("env", "diff", a[:10], b, "--json", store_uri=store_uri))
    assert out["a"] == a and out["b"] == b and out["same"] is False
    assert out["seed"]["seed"] == {"a": 1, "b": 2}
    assert set(out["datasets"]["changed"]) == {"data.csv"}
    assert out["git"]["diff_sha256"]["a"] != out["git"]["diff_sha256"]["b"]
    assert out["patch"]["added"] == ["lib.py"]  # lib.py changed only in B
    assert out["packages"] == {} and out["python"] == {} and out["hardware"] == {}
    text = cli("env", "diff", a, b, store_uri=store_uri)
    assert text.returncode == 0
    assert "seed:" in text.stdout and "lib.py" in text.stdout and "data.csv" in text.stdout


def test_env_diff_current_compares_with_the_working_tree_now(
    repo: Path, script: Script, store_uri: str
) -> None:
    a, _ = _two_runs(repo, script)
    same = json_out(cli("env", "diff", a, "--current", "--json", store_uri=store_uri, cwd=repo))
    # run A was taken before lib.py changed; the tree now has that change
    assert same["patch"]["added"] == ["lib.py"]
    assert same["seed"] == {} and same["command"] == {} and same["packages"] == {}


def test_env_show_readable_json_requirements_and_patch(
    repo: Path, script: Script, store_uri: str
) -> None:
    _, b = _two_runs(repo, script)
    text = cli("env", b, store_uri=store_uri)
    assert text.returncode == 0, text.stderr
    assert "git" in text.stdout and "dirty" in text.stdout and "packages (" in text.stdout
    env = json_out(cli("env", b, "--json", store_uri=store_uri))
    assert env["git"]["commit"] == git(repo, "rev-parse", "HEAD")
    patch = cli("env", b, "--patch", store_uri=store_uri)
    assert "+X = 42" in patch.stdout
    missing = cli("env", b, "--snapshot", store_uri=store_uri)
    assert missing.returncode == 1 and "no captured code snapshot" in missing.stderr
    req = cli("env", b, "--requirements", store_uri=store_uri)
    assert req.returncode == 0
    pinned = {}
    for line in req.stdout.splitlines():
        if line and not line.startswith("#"):
            r = Requirement(line)  # every non-comment line is a valid pip requirement
            if not r.url:
                (spec,) = r.specifier
                pinned[r.name] = spec.version
    assert pinned and all(env["packages"][n] == v for n, v in pinned.items())
    show = cli("show", b, store_uri=store_uri)
    assert show.returncode == 0 and "seed     2" in show.stdout and "hardware" in show.stdout


def test_requirements_format_for_vcs_editable_and_plain() -> None:
    text = requirements(
        {"numpy": "2.0.0", "mylib": "0.1", "tool": "1.2"},
        {
            "mylib": {"editable": True, "url": "file:///src/mylib", "vcs": None, "commit": None},
            "tool": {
                "editable": False,
                "url": "https://github.com/o/tool.git",
                "vcs": "git",
                "commit": "abc123",
            },
        },
    )
    assert text.splitlines() == [
        "# mylib==0.1 (editable/local install from file:///src/mylib; install it from source)",
        "numpy==2.0.0",
        "tool @ git+https://github.com/o/tool.git@abc123",
    ]
    for line in text.splitlines()[1:]:
        Requirement(line)


def test_env_diff_packages_hardware_and_sameness() -> None:
    a = {
        "packages": {"numpy": "1.0", "torch": "2.1", "old": "1"},
        "python": {"version": "3.11.7"},
        "hardware": {"gpus": [{"name": "A100", "memory_bytes": 1}]},
        "command": {"argv": ["a"]},
    }
    b = {
        "packages": {"numpy": "1.1", "torch": "2.1", "new": "2"},
        "python": {"version": "3.12.1"},
        "hardware": {"gpus": []},
        "command": {"argv": ["b"]},
    }
    d = env_diff(a, b)
    assert d["packages"] == {
        "added": {"new": "2"},
        "removed": {"old": "1"},
        "changed": {"numpy": {"a": "1.0", "b": "1.1"}},
    }
    assert d["python"] == {"version": {"a": "3.11.7", "b": "3.12.1"}}
    assert d["hardware"]["gpus"] == {"a": ["A100 (1 B)"], "b": []}
    assert d["same"] is False
    same = env_diff({**a, "command": {"argv": ["x"]}}, a)
    assert same["same"] is True and same["command"] != {}
    assert list(env_diff(None, None)) == [
        "same",
        "packages",
        "env_vars",
        "git",
        "code_snapshot",
        "python",
        "os",
        "hardware",
        "seed",
        "command",
        "datasets",
        "patch",
    ]


def test_patch_files_splits_a_real_git_patch(repo: Path) -> None:
    (repo / "lib.py").write_text("X = 9\n")
    (repo / "train.py").write_text("print('x')\n")
    patch = subprocess.run(
        ["git", "diff", "HEAD"], cwd=repo, capture_output=True, check=True
    ).stdout
    assert set(patch_files(patch)) == {"lib.py", "train.py"}


def test_secret_policy_units() -> None:
    env = {
        "CUDA_VISIBLE_DEVICES": "0,1",
        "HOME": "/root",
        "AWS_SECRET_ACCESS_KEY": "x",
        "NCCL_AUTH_KEY": "x",
        "TORCH_HOME": "/data/torch",
        "XLA_FLAGS": "--xla_gpu",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "TF_RANDOM": "kP9xQ2mZ7vL4nR8tW1yB6cD3fG5hJ0sAe",
    }
    assert allowed_env_vars(env) == {
        "CUDA_VISIBLE_DEVICES": "0,1",
        "TORCH_HOME": "/data/torch",
        "XLA_FLAGS": "--xla_gpu",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    assert allowed_env_vars({**env, "LABLEDGER_ENV_ALLOWLIST": "HOME"})["HOME"] == "/root"
    assert strip_url_credentials("https://u:p@host.io:8443/x.git") == "https://host.io:8443/x.git"
    assert strip_url_credentials("https://host/x?token=abc&ref=main") == "https://host/x?ref=main"
    assert strip_url_credentials("git@github.com:o/r.git") == "git@github.com:o/r.git"
    assert redact_argv(["t.py", "--password", "hunter2", "--lr=0.1", "--api-key=zz"]) == [
        "t.py",
        "--password",
        "<redacted>",
        "--lr=0.1",
        "--api-key=<redacted>",
    ]


def test_show_renders_an_unseeded_outside_git_run(
    tmp_path: Path, script: Script, store_uri: str
) -> None:
    d = tmp_path / "plain"
    d.mkdir()
    rid = script.run(
        "import labledger\nr = labledger.init('cap')\nr.finish()\nprint(r.id)\n", cwd=d
    ).stdout.strip()
    out = cli("show", rid, store_uri=store_uri)
    assert out.returncode == 0
    assert "snapshot" in out.stdout and "none (unseeded run)" in out.stdout
    assert (
        json.loads(cli("show", rid, "--json", store_uri=store_uri).stdout)["env"]["seed"]["seed"]
        is None
    )
    assert load_run(store_uri, rid)["env"]["code_snapshot"]["files"][0]["path"] == "script.py"
