"""docs/integrations.md shows every example file exactly, and its line counts are true."""

from __future__ import annotations

import re

from .conftest import EXAMPLES, ROOT

DOC = (ROOT / "docs" / "integrations.md").read_text()
BLOCK = re.compile(r"<!-- example: (\S+) -->\n```\w+\n(.*?)```\n", re.S)


def test_every_example_is_shown_verbatim() -> None:
    shown = {name: body for name, body in BLOCK.findall(DOC)}
    files = {
        p.relative_to(EXAMPLES).as_posix()
        for p in EXAMPLES.rglob("*")
        if p.suffix in (".py", ".yaml")
    }
    assert set(shown) == files
    for name, body in shown.items():
        assert body == (EXAMPLES / name).read_text(), (
            f"docs/integrations.md is out of date for {name}"
        )


def test_the_stated_tracking_lines_are_counted_from_the_examples() -> None:
    def marked(name: str) -> int:
        return sum("# labledger" in line for line in (EXAMPLES / name).read_text().splitlines())

    table = dict(re.findall(r"\| `integrations\.(\w+)` \| ([^|]+) \|", DOC))
    for fw in ("lightning", "keras", "transformers", "xgboost", "lightgbm", "sklearn", "optuna"):
        assert table[fw].strip() == str(marked(f"{fw}_example.py")), fw
    assert (
        table["hydra"].strip()
        == f"{marked('hydra_conf/config.yaml')} (YAML) + {marked('hydra_app.py')}"
    )
    assert marked("autolog_example.py") == 2  # autolog() and the optional init()
