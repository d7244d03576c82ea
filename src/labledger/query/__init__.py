"""The filter language: parse text to a checked tree, evaluate it in Python, compile it to bound SQL.

>>> from labledger.query import parse, evaluate
>>> evaluate(parse('config.lr < 0.01 and status = "finished"'),
...          {"config": {"lr": 0.001}, "status": "finished"})
True

See docs/query.md for the language reference.
"""

from __future__ import annotations

from ._ast import And, Compare, Exists, Field, InList, Like, Node, Not, Or, to_text
from ._compile import compile_filter, compile_order_by
from ._evaluate import evaluate
from ._parser import parse, parse_field
from ._plan import fetch_ranked

__all__ = [
    "And",
    "Compare",
    "Exists",
    "Field",
    "InList",
    "Like",
    "Node",
    "Not",
    "Or",
    "compile_filter",
    "compile_order_by",
    "evaluate",
    "fetch_ranked",
    "parse",
    "parse_field",
    "to_text",
]
