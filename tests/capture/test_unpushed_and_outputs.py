"""Code capture that survives the clone (issue #16 item 6): a git bundle of unpushed
commits, used by repro when the commit is gone; outputs and large untracked files left
out of the patch and listed by ``show``. Real git repositories and real scripts."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from _caphelpers import Script, cli, get_blob, git, load_run

from labledger.repro._code import code_source, prepare_code, remove_code

TRAIN = """
    import labledger
    with labledger.init("p", seed=1) as run:
        run.log({"x": 1})
        print(run.id)
"""


def _bare_remote(repo: Path, tmp_path: Path) -> Path:
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    git(repo, "push", "-q", "-u", "origin", "main")
    return remote


def _commit(repo: Path, name: str, text: str) -> str:
    (repo / name).write_text(text)
    git(repo, "add", name)
    git(repo, "commit", "-q", "-m", f"add {name}")
    return git(repo, "rev-parse", "HEAD")


def _recreate(store_uri: str, run: dict[str, Any], dest: Path) -> list[str]:
    src = code_source(run)
    assert not src.problems, src.problems
    notes = prepare_code(src, dest, lambda sha: get_blob(store_uri, sha))
    return notes


def test_pushed_head_stores_no_bundle(
    repo: Path, script: Script, store_uri: str, tmp_path: Path
) -> None:
    _bare_remote(repo, tmp_path)
    script.run(TRAIN, cwd=repo)
    assert "bundle" not in load_run(store_uri)["env"]["git"]


def test_unpushed_commits_are_bundled_and_repro_uses_them_after_the_clone_is_gone(
    repo: Path, script: Script, store_uri: str, tmp_path: Path
) -> None:
    remote = _bare_remote(repo, tmp_path)
    _commit(repo, "a.py", "A = 1\n")
    head = _commit(repo, "b.py", "B = 2\n")
    (repo / "a.py").write_text("A = 3\n")  # and an uncommitted change on top
    proc = script.run(TRAIN, cwd=repo)
    run = load_run(store_uri, proc.stdout.strip())
    bundle = run["env"]["git"]["bundle"]
    assert bundle["stored"] is True and bundle["commits"] == 2
    assert bundle["reason"] == "HEAD is on no remote branch"
    assert bundle["size"] == len(get_blob(store_uri, bundle["sha256"])) > 0
    shown = cli("show", run["id"], store_uri=store_uri)
    assert "bundle of 2 commit(s) stored" in shown.stdout, shown.stdout

    # the clone (and its unpushed commits) is gone; the remote never had them
    shutil.rmtree(repo)
    dest = tmp_path / "again"
    notes = _recreate(store_uri, run, dest)
    assert any("fetched it from the stored bundle" in n for n in notes), notes
    assert git(dest, "rev-parse", "HEAD") == head
    assert (dest / "b.py").read_text() == "B = 2\n"
    assert (dest / "a.py").read_text() == "A = 3\n"  # the patch applied on top
    remove_code(code_source(run), dest)
    assert remote.is_dir()


def test_repository_without_remote_is_bundled_whole(
    repo: Path, script: Script, store_uri: str, tmp_path: Path
) -> None:
    head = _commit(repo, "c.py", "C = 1\n")
    proc = script.run(TRAIN, cwd=repo)
    run = load_run(store_uri, proc.stdout.strip())
    bundle = run["env"]["git"]["bundle"]
    assert bundle["stored"] and bundle["commits"] == 2
    assert bundle["reason"] == "the repository has no remote branch"
    # packed once per HEAD: kept in the user cache for the next run from the same HEAD
    cached = list((tmp_path / "cache" / "bundles").glob("*.bundle"))
    assert [p.read_bytes() for p in cached] == [get_blob(store_uri, bundle["sha256"])]
    shutil.rmtree(repo)
    dest = tmp_path / "from-bundle"
    notes = _recreate(store_uri, run, dest)
    assert any("stored bundle" in n for n in notes), notes
    assert git(dest, "rev-parse", "HEAD") == head
    assert (dest / "train.py").read_text() == "print('train')\n"


def test_bundle_over_the_cap_is_not_stored_and_says_so(
    repo: Path, script: Script, store_uri: str
) -> None:
    script.run(TRAIN, cwd=repo, env={"LABLEDGER_CAPTURE_BUNDLE_MAX": "10"})
    run = load_run(store_uri)
    bundle = run["env"]["git"]["bundle"]
    assert bundle["stored"] is False and bundle["sha256"] is None
    assert bundle["why"] == "over the bundle cap" and bundle["size"] > 10
    assert "NOT stored: over the bundle cap" in cli("show", run["id"], store_uri=store_uri).stdout


def test_outputs_and_large_untracked_files_are_left_out_and_listed(
    repo: Path, script: Script, store_uri: str
) -> None:
    (repo / "multirun" / "2024-01-01" / "0").mkdir(parents=True)
    (repo / "multirun" / "2024-01-01" / "0" / "config.yaml").write_text("lr: 0.1\n")
    (repo / "wandb").mkdir()
    (repo / "wandb" / "debug.log.txt").write_text("x\n")
    (repo / "model.pt").write_text("not really a model, but named like one\n")
    (repo / "weights.safetensors").write_bytes(b"\0" * 100)
    (repo / "last.ckpt").write_text("checkpoint\n")
    (repo / "table.csv").write_text("a,b\n" * 400_000)  # 1.6 MB of text
    (repo / "notes.txt").write_text("kept\n")
    (repo / "mid.csv").write_text("c\n" * 300_000)  # 600 KB: under the default limit
    proc = script.run(TRAIN, cwd=repo)
    run = load_run(store_uri, proc.stdout.strip())
    g = run["env"]["git"]
    reasons = {e["path"]: e["reason"] for e in g["excluded"]}
    assert reasons["multirun/2024-01-01/0/config.yaml"] == "output (multirun/)"
    assert reasons["wandb/debug.log.txt"] == "output (wandb/)"
    assert reasons["model.pt"] == "output (*.pt)"
    assert reasons["weights.safetensors"] == "output (*.safetensors)"
    assert reasons["table.csv"].startswith("large (over 1000000 bytes)")
    assert "notes.txt" not in reasons and "mid.csv" not in reasons and "script.py" not in reasons
    patch = get_blob(store_uri, g["diff_sha256"]).decode()
    assert "b/notes.txt" in patch and "b/mid.csv" in patch
    assert "multirun" not in patch and "model.pt" not in patch and "table.csv" not in patch
    shown = cli("show", run["id"], store_uri=store_uri).stdout
    assert "left out" in shown and "model.pt (output (*.pt)" in shown, shown
    assert "and 1 more (labledger env RUN)" in shown  # 5 listed, the rest in `labledger env`
    detail = cli("env", run["id"], store_uri=store_uri).stdout
    assert "table.csv: large" in detail and "wandb/debug.log.txt: output (wandb/)" in detail

    # the limit and the patterns are configurable
    proc = script.run(
        TRAIN,
        cwd=repo,
        env={"LABLEDGER_CAPTURE_UNTRACKED_MAX": "500KB", "LABLEDGER_CAPTURE_EXCLUDE": "*.txt"},
    )
    run = load_run(store_uri, proc.stdout.strip())
    reasons = {e["path"]: e["reason"] for e in run["env"]["git"]["excluded"]}
    assert reasons["mid.csv"].startswith("large (over 500000 bytes)")
    assert reasons["notes.txt"] == "output (*.txt)"
