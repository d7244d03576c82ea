"""``labledger show RUN`` lists a run's rich-result keys with their kind, count and steps
(the text view; the JSON view is in test_media.py), and none for a run without any."""

from __future__ import annotations

import numpy as np
from click.testing import CliRunner

import labledger
from labledger.cli import cli


def test_show_lists_rich_result_keys_with_counts(store_uri: str) -> None:
    with labledger.init("show-media", store=store_uri, capture=False) as run:
        for s in range(3):
            run.log({"img": labledger.Image(np.zeros((4, 4), dtype=np.uint8))}, step=s)
        run.log({"img": labledger.Image(np.ones((4, 4), dtype=np.uint8))}, step=2)  # 2 at a step
        run.log({"cm": labledger.ConfusionMatrix(y_true=[0, 1], y_pred=[0, 0])}, step=2)
    with labledger.init("show-media", store=store_uri, capture=False) as plain:
        plain.log({"loss": 1.0})
    out = CliRunner().invoke(cli, ["show", run.id, "--store", store_uri], env={"COLUMNS": "160"})
    assert out.exit_code == 0, out.output
    assert "rich results" in out.output
    cells = [
        [t for t in line.split() if t.strip("│┃|")] for line in out.output.splitlines()
    ]  # the table's cells, without its borders
    rows = {c[0]: c[1:] for c in cells if c and c[0] in ("img", "cm")}
    assert rows == {"img": ["image", "4", "3"], "cm": ["confusion_matrix", "1", "1"]}
    assert "labledger media ls|get" in out.output
    bare = CliRunner().invoke(cli, ["show", plain.id, "--store", store_uri])
    assert bare.exit_code == 0, bare.output
    assert "rich results" not in bare.output
