"""The filter language: parse text to a checked tree and evaluate it in Python.

Compiling a tree to bound SQL lives next to the SQL it produces, in
:mod:`labledger.store._filter_sql` (and the ranked top-N plan in ``store/_ranked_sql.py``).

>>> from labledger.query import parse, evaluate
>>> evaluate(parse('config.lr < 0.01 and status = "finished"'),
...          {"config": {"lr": 0.001}, "status": "finished"})
True

See docs/query.md for the language reference.
"""

from __future__ import annotations

from ._ast import (
    NUMERIC_COLUMNS,
    And,
    Compare,
    Exists,
    Field,
    InList,
    Like,
    Literal,
    Node,
    Not,
    Or,
    to_text,
)
from ._evaluate import evaluate
from ._parser import parse, parse_field

__all__ = [
    "NUMERIC_COLUMNS",
    "And",
    "Compare",
    "Exists",
    "Field",
    "InList",
    "Like",
    "Literal",
    "Node",
    "Not",
    "Or",
    "evaluate",
    "parse",
    "parse_field",
    "to_text",
]
