"""End to end: a real training script records its environment without any user code."""

from __future__ import annotations

import importlib.metadata as md
import json
import re
from pathlib import Path

import pytest
from _caphelpers import Script, all_store_bytes, get_blob, git, load_run

TRAIN = """
import labledger
run = labledger.init("cap")
run.log({"loss": 1.0})
run.finish()
print(run.id)
"""

FAKE_TOKEN = "ghp_" + "Zq8" * 12  # a GitHub-shaped token, never real


def test_dirty_repo_run_records_git_python_os_hardware_command(
    repo: Path, script: Script, store_uri: str
) -> None:
    (repo / "lib.py").write_text("X = 2\n")
    proc = script.run(TRAIN, cwd=repo, name="train2.py", args=["--lr", "0.1"])
    run = load_run(store_uri, proc.stdout.strip())
    env = run["env"]
    g = env["git"]
    assert g["commit"] == git(repo, "rev-parse", "HEAD") and g["branch"] == "main"
    assert g["dirty"] is True and g["untracked"] == ["train2.py"]
    patch = get_blob(store_uri, g["diff_sha256"])
    assert b"+X = 2" in patch and b"+++ b/train2.py" in patch
    assert env["python"]["executable"] and env["python"]["version"].count(".") == 2
    assert env["os"]["system"] == "Linux" and env["os"]["libc"].startswith("glibc")
    hw = env["hardware"]
    assert hw["cpu_count"] >= 1 and hw["memory_bytes"] > 0 and hw["cpu_model"]
    assert hw["gpus"] == []  # no GPU here: an empty list, not an error
    assert env["command"]["argv"][1:] == ["--lr", "0.1"]
    assert env["command"]["cwd"] == str(repo) and env["command"]["rel_cwd"] == "."
    assert env["command"]["entry_point"] == str(repo / "train2.py")
    assert "errors" not in env
    rt = env["runtime"]
    assert rt["status"] == "finished" and rt["wall_s"] >= 0 and rt["cpu_s"] > 0
    assert env["seed"] == {"seed": None, "deterministic": False, "seeded": []}
    assert "uncommitted changes captured as a patch" in proc.stderr
    assert "no seed set" in proc.stderr


def test_packages_match_importlib_metadata(repo: Path, script: Script, store_uri: str) -> None:
    proc = script.run(TRAIN, cwd=repo)
    env = load_run(store_uri, proc.stdout.strip())["env"]
    expected: dict[str, str] = {}
    seen: set[str] = set()
    for d in md.distributions():
        key = re.sub(r"[-_.]+", "-", d.metadata["Name"]).lower()
        if key not in seen:
            seen.add(key)
            expected[d.metadata["Name"]] = d.version
    assert env["packages"] == expected


def test_editable_install_is_recorded_with_its_source() -> None:
    from labledger.capture.packages import capture_packages

    packages, sources = capture_packages()
    dist = md.distribution("labledger")
    direct = json.loads(dist.read_text("direct_url.json") or "{}")
    if direct.get("dir_info", {}).get("editable"):
        assert sources["labledger"]["editable"] is True
        assert sources["labledger"]["url"] == direct["url"]
    else:  # labledger found through an egg-info on sys.path: no PEP 610 record
        assert "labledger" not in sources
    assert packages["labledger"] == dist.version


def test_secrets_are_never_stored(repo: Path, script: Script, store_uri: str) -> None:
    git(repo, "remote", "add", "origin", f"https://bob:{FAKE_TOKEN}@github.com/org/proj.git")
    env = {
        "GITHUB_TOKEN": FAKE_TOKEN,
        "CUDA_API_TOKEN": FAKE_TOKEN,  # allowlisted prefix, secret name
        "TORCH_HOME": f"https://u:{FAKE_TOKEN}@example.com/cache",  # allowlisted name, secret value
        "TF_SOMETHING": "x" + FAKE_TOKEN,  # a token shape inside a value
        "MY_SETTING": "kept",
        "MY_PASSWORD": FAKE_TOKEN,
        "LABLEDGER_ENV_ALLOWLIST": "MY_*",
        "OMP_NUM_THREADS": "3",
    }
    proc = script.run(
        TRAIN, cwd=repo, env=env, args=["--api-token", FAKE_TOKEN, f"--auth={FAKE_TOKEN}"]
    )
    run = load_run(store_uri, proc.stdout.strip())
    stored = run["env"]
    assert stored["env_vars"]["MY_SETTING"] == "kept"
    assert stored["env_vars"]["OMP_NUM_THREADS"] == "3"
    assert "MY_PASSWORD" not in stored["env_vars"] and "CUDA_API_TOKEN" not in stored["env_vars"]
    assert stored["git"]["remote"] == "https://github.com/org/proj.git"
    assert FAKE_TOKEN not in json.dumps(run)
    assert FAKE_TOKEN.encode() not in all_store_bytes(store_uri)
    assert "Zq8Zq8Zq8" not in proc.stderr


def test_outside_git_stores_a_snapshot_of_script_and_local_modules(
    tmp_path: Path, script: Script, store_uri: str
) -> None:
    d = tmp_path / "nogit"
    (d / "pkg").mkdir(parents=True)
    (d / "helpers.py").write_text("VALUE = 41\n")
    (d / "pkg" / "__init__.py").write_text("")
    (d / "pkg" / "model.py").write_text("SIZE = 3\n")
    (d / "unused.py").write_text("never imported\n")
    code = "import helpers, pkg.model\n" + TRAIN
    proc = script.run(code, cwd=d, name="main.py")
    env = load_run(store_uri, proc.stdout.strip())["env"]
    assert "git" not in env
    snap = env["code_snapshot"]
    assert sorted(f["path"] for f in snap["files"]) == [
        "helpers.py",
        "main.py",
        "pkg/__init__.py",
        "pkg/model.py",
    ]
    files = json.loads(get_blob(store_uri, snap["sha256"]))
    assert files["helpers.py"] == "VALUE = 41\n" and files["pkg/model.py"] == "SIZE = 3\n"
    assert "import helpers" in files["main.py"]
    assert "not in a git repository" in proc.stderr


def test_warnings_are_suppressed_by_labledger_quiet(repo: Path, script: Script) -> None:
    (repo / "lib.py").write_text("X = 5\n")
    proc = script.run(TRAIN, cwd=repo, env={"LABLEDGER_QUIET": "1"})
    assert "labledger: warning" not in proc.stderr


def test_warnings_print_once_per_process(repo: Path, script: Script) -> None:
    code = """
    import labledger
    for i in range(3):
        run = labledger.init("cap")
        run.finish()
    """
    proc = script.run(code, cwd=repo)
    assert proc.stderr.count("no seed set") == 1
    assert proc.stderr.count("no dataset fingerprint") == 1


def test_seed_is_recorded_and_reproduces_draws_in_a_second_process(
    repo: Path, script: Script, store_uri: str
) -> None:
    code = """
    import random, numpy as np, labledger
    run = labledger.init("cap", seed=1234)
    print(run.id, random.random(), float(np.random.rand()))
    run.finish()
    """
    first = script.run(code, cwd=repo).stdout.split()
    second = script.run(code, cwd=repo).stdout.split()
    assert first[1:] == second[1:]
    run = load_run(store_uri, first[0])
    assert run["seed"] == 1234
    assert run["env"]["seed"]["seed"] == 1234
    assert {"random", "numpy"} <= set(run["env"]["seed"]["seeded"])
    assert "no seed set" not in script.run(code, cwd=repo).stderr


def test_seed_everything_after_init_is_recorded(repo: Path, script: Script, store_uri: str) -> None:
    code = """
    import labledger
    run = labledger.init("cap")
    labledger.seed_everything(99, deterministic=True)
    run.finish()
    print(run.id)
    """
    proc = script.run(code, cwd=repo)
    env = load_run(store_uri, proc.stdout.strip())["env"]
    assert env["seed"]["seed"] == 99 and env["seed"]["deterministic"] is True


def test_torch_is_seeded_on_import_without_being_imported_early(repo: Path, script: Script) -> None:
    code = """
    import sys, labledger
    labledger.seed_everything(7)
    assert "torch" not in sys.modules
    from labledger.capture.seeds import current_seed_info
    print(current_seed_info()["seeded"])
    import torch
    a = torch.rand(4)
    torch.manual_seed(7)
    b = torch.rand(4)
    print(bool((a == b).all()), current_seed_info()["seeded"])
    """
    out = script.run(code, cwd=repo).stdout.splitlines()
    assert "torch (on import)" in out[0]
    assert out[1].startswith("True") and "'torch'" in out[1]


def test_strict_mode_refuses_a_run_without_seed(repo: Path, script: Script) -> None:
    code = """
    import labledger
    try:
        labledger.init("cap")
    except labledger.StrictModeError as exc:
        print("refused:", exc)
    else:
        print("started")
    """
    proc = script.run(code, cwd=repo, env={"LABLEDGER_STRICT": "1"})
    assert "refused:" in proc.stdout and "no seed" in proc.stdout
    ok = script.run(
        code.replace('init("cap")', 'init("cap", seed=3)'), cwd=repo, env={"LABLEDGER_STRICT": "1"}
    )
    assert "started" in ok.stdout


def test_strict_mode_refuses_a_run_outside_git_and_reads_pyproject(
    tmp_path: Path, script: Script
) -> None:
    d = tmp_path / "proj"
    d.mkdir()
    (d / "pyproject.toml").write_text("[project]\nname='x'\n\n[tool.labledger]\nstrict = true\n")
    code = """
    import labledger
    try:
        labledger.init("cap", seed=1)
    except labledger.StrictModeError as exc:
        print("refused:", exc)
    else:
        print("started")
    """
    proc = script.run(code, cwd=d)
    assert "refused:" in proc.stdout and "not in a git repository" in proc.stdout
    off = script.run(code, cwd=d, env={"LABLEDGER_STRICT": "0"})
    assert "started" in off.stdout


def test_strict_mode_refuses_a_repository_without_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import labledger

    d = tmp_path / "fresh"
    d.mkdir()
    git(d, "init", "-q")
    monkeypatch.chdir(d)
    monkeypatch.setenv("LABLEDGER_STRICT", "1")
    with pytest.raises(labledger.StrictModeError, match="has no commit"):
        labledger.init("cap", seed=1, store=f"sqlite:///{tmp_path / 's.db'}")


def test_capture_off_records_no_env(repo: Path, script: Script, store_uri: str) -> None:
    proc = script.run(TRAIN, cwd=repo, env={"LABLEDGER_CAPTURE": "off"})
    env = load_run(store_uri, proc.stdout.strip())["env"]
    assert "git" not in env and "packages" not in env
    assert "labledger: warning" not in proc.stderr


def test_in_process_run_on_any_store_keeps_the_patch(
    repo: Path, any_store_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import labledger
    from labledger.store import open_store

    monkeypatch.chdir(repo)
    monkeypatch.setenv("LABLEDGER_QUIET", "1")
    (repo / "lib.py").write_text("X = 'pg'\n")
    run = labledger.init("cap", store=any_store_uri, seed=5, system_metrics=False)
    run.finish()
    st = open_store(any_store_uri)
    try:
        rec = st.get_run(run.id)
        patch = bytes(st.get_blob(rec["env"]["git"]["diff_sha256"]))
    finally:
        st.close()
    assert b"+X = 'pg'" in patch
    assert rec["env"]["git"]["root"] == str(repo) and rec["env"]["seed"]["seed"] == 5
    assert "code_snapshot" not in rec["env"]


def test_installed_entry_points_are_not_snapshotted() -> None:
    import sysconfig

    from labledger.capture.snapshot import is_installed

    assert is_installed(Path(sysconfig.get_paths()["purelib"]).resolve() / "pytest" / "__main__.py")
    assert not is_installed(Path("/usr/src/app/train.py"))
