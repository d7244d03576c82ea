"""The filter language: parse text to a checked tree, evaluate it in Python, compile it to bound SQL.

>>> from labledger.query import parse, evaluate
>>> evaluate(parse('config.lr < 0.01 and status = "finished"'),
...          {"config": {"lr": 0.001}, "status": "finished"})
True

See docs/query.md for the language reference.
"""

from __future__ import annotations

from ..store._filter_sql import compile_filter, compile_order_by
from ..store._ranked_sql import fetch_ranked
from ._ast import And, Compare, Exists, Field, InList, Like, Node, Not, Or, to_text
from ._evaluate import evaluate
from ._parser import parse, parse_field

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
