"""Parse filter text into a checked syntax tree (see docs/query.md for the language).

Grammar (keywords are case-insensitive)::

    expr     := and_expr ("or" and_expr)*
    and_expr := unary ("and" unary)*
    unary    := "not" unary | "(" expr ")" | test
    test     := field OP literal | field ["not"] "in" "(" literal ("," literal)* ")"
              | field ["not"] "like" string | field ["not"] "exists"
    OP       := "=" | "==" | "!=" | "<>" | "<" | "<=" | ">" | ">="
    literal  := number | string | "true" | "false"
    field    := segment ("." segment)*      segment := [A-Za-z_][A-Za-z0-9_/-]* | `any text`

Type errors (``status > 3``, ``created_at = "abc"``, ``tags < "x"``) are reported here,
with the position of the offending token, rather than becoming an empty result.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass

from .._exceptions import InvalidFilterError
from ._ast import (
    NUMERIC_COLUMNS,
    STRING_COLUMNS,
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
)

__all__ = ["MAX_DEPTH", "MAX_LENGTH", "parse", "parse_field"]

MAX_LENGTH = 1_000_000  # characters: room for `in` lists of 100,000 values
MAX_DEPTH = 64
STATUSES = ("running", "finished", "failed", "crashed", "killed", "pruned")
_KEYWORDS = {"and", "or", "not", "in", "like", "exists", "true", "false"}
_ALIASES = {"params": "config", "param": "config", "metrics": "summary", "metric": "summary"}
_JSON_ROOTS = ("config", "summary", "env")
_COLUMNS = (*STRING_COLUMNS, *NUMERIC_COLUMNS, "tags")
_OPS = {"=": "=", "==": "=", "!=": "!=", "<>": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}

_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<num>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![A-Za-z_`]))
  | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<op>==|!=|<>|<=|>=|=|<|>)
  | (?P<punct>[(),])
  | (?P<path>(?:[A-Za-z_][A-Za-z0-9_/\-]*|`[^`]*`)(?:\.(?:[A-Za-z_][A-Za-z0-9_/\-]*|`[^`]*`))*)
    """,
    re.VERBOSE | re.DOTALL,
)
_SEGMENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_/\-]*|`[^`]*`")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'"}


@dataclass(frozen=True)
class _Tok:
    kind: str  # num str op punct path kw end
    text: str
    pos: int
    value: object = None


def _unescape(body: str, expression: str, pos: int) -> str:
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            nxt = body[i + 1]
            if nxt == "u" and re.match(r"[0-9a-fA-F]{4}", body[i + 2 : i + 6]):
                out.append(chr(int(body[i + 2 : i + 6], 16)))
                i += 6
                continue
            if nxt not in _ESCAPES:
                raise InvalidFilterError(
                    f"unknown escape \\{nxt} in a string", expression, pos + 1 + i
                )
            out.append(_ESCAPES[nxt])
            i += 2
            continue
        out.append(ch)
        i += 1
    text = "".join(out)
    if "\x00" in text or any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        raise InvalidFilterError(
            "strings must not contain NUL or lone surrogate characters", expression, pos
        )
    return text


def _tokenize(expression: str) -> list[_Tok]:
    toks: list[_Tok] = []
    pos = 0
    n = len(expression)
    while pos < n:
        m = _TOKEN_RE.match(expression, pos)
        if m is None:
            ch = expression[pos]
            if ch in "\"'":
                raise InvalidFilterError("unterminated string", expression, pos)
            hint = " (strings need double quotes)" if ch in "\u201c\u201d\u2018\u2019" else ""
            raise InvalidFilterError(f"unexpected character {ch!r}{hint}", expression, pos)
        kind = m.lastgroup or ""
        text = m.group()
        if kind == "num":
            value: object = float(text) if any(c in text for c in ".eE") else int(text)
            toks.append(_Tok("num", text, pos, value))
        elif kind == "str":
            toks.append(_Tok("str", text, pos, _unescape(text[1:-1], expression, pos)))
        elif kind in ("op", "punct"):
            toks.append(_Tok(kind, text, pos))
        elif kind == "path":
            if text.lower() in _KEYWORDS:
                toks.append(_Tok("kw", text.lower(), pos))
            else:
                toks.append(_Tok("path", text, pos))
        pos = m.end()
    toks.append(_Tok("end", "", n))
    return toks


def _check_key(key: str, expression: str, pos: int) -> str:
    if not key:
        raise InvalidFilterError("empty key", expression, pos)
    if '"' in key or "\\" in key or any(ord(c) < 32 or 0xD800 <= ord(c) <= 0xDFFF for c in key):
        raise InvalidFilterError(
            "keys must not contain quotes, backslashes or control characters", expression, pos
        )
    return key


def _field(text: str, expression: str, pos: int) -> Field:
    segs = [s[1:-1] if s.startswith("`") else s for s in _SEGMENT_RE.findall(text)]
    root = segs[0].lower()
    root = _ALIASES.get(root, root)
    rest = [_check_key(s, expression, pos) for s in segs[1:]]
    if root in _JSON_ROOTS:
        if not rest:
            raise InvalidFilterError(
                f"{root} needs a key, e.g. {root}.{ {'config': 'lr', 'summary': 'val_acc', 'env': 'git.commit'}[root] }",
                expression,
                pos,
            )
        if root == "summary":
            # metric keys are flat and may themselves contain dots
            return Field("summary", (".".join(rest),))
        return Field(root, tuple(rest))
    if root in _COLUMNS:
        if rest:
            raise InvalidFilterError(f"{root} has no sub-keys", expression, pos)
        return Field(root)
    hint = ""
    if not rest:
        hint = f"; did you mean config.{segs[0]} or summary.{segs[0]}?"
    raise InvalidFilterError(
        f"unknown field {segs[0]!r}: use config.*, summary.*, env.*, tags, "
        f"{', '.join(STRING_COLUMNS)}, {', '.join(NUMERIC_COLUMNS)}{hint}",
        expression,
        pos,
    )


def parse_field(text: str) -> Field:
    """Parse a single field name such as ``config.lr`` or ``summary.val_acc`` (used for sorting)."""
    text = text.strip()
    m = _TOKEN_RE.fullmatch(text)
    if m is None or m.lastgroup != "path" or text.lower() in _KEYWORDS:
        raise InvalidFilterError(f"not a field name: {text!r}", text, 0)
    return _field(text, text, 0)


def _to_epoch(value: str, expression: str, pos: int) -> float:
    raw = value.strip()
    try:
        if raw.endswith(("Z", "z")):
            raw = raw[:-1] + "+00:00"
        parsed = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidFilterError(
            f'{value!r} is not a time: use epoch seconds or an ISO date/time such as "2024-05-01" or "2024-05-01T12:00:00Z"',
            expression,
            pos,
        ) from None
    return parsed.timestamp()  # naive times are local time, as `labledger ls` shows them


class _Parser:
    def __init__(self, expression: str) -> None:
        self.expression = expression
        self.toks = _tokenize(expression)
        self.i = 0
        self.depth = 0

    def error(self, message: str, tok: _Tok | None = None) -> InvalidFilterError:
        tok = tok or self.peek()
        return InvalidFilterError(message, self.expression, tok.pos)

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def take(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def is_kw(self, word: str) -> bool:
        tok = self.peek()
        return tok.kind == "kw" and tok.text == word

    def expect_punct(self, ch: str, what: str) -> _Tok:
        tok = self.peek()
        if tok.kind != "punct" or tok.text != ch:
            raise self.error(f"expected {what}")
        return self.take()

    def parse(self) -> Node:
        if not self.expression.strip():
            raise self.error("empty filter")
        node = self.parse_or()
        tok = self.peek()
        if tok.kind != "end":
            if tok.kind == "punct" and tok.text == ")":
                raise self.error("unbalanced ')'")
            raise self.error(f"expected 'and', 'or' or the end, found {tok.text!r}")
        return node

    def parse_or(self) -> Node:
        items = [self.parse_and()]
        while self.is_kw("or"):
            self.take()
            items.append(self.parse_and())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def parse_and(self) -> Node:
        items = [self.parse_unary()]
        while self.is_kw("and"):
            self.take()
            items.append(self.parse_unary())
        return items[0] if len(items) == 1 else And(tuple(items))

    def parse_unary(self) -> Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"the filter nests deeper than {MAX_DEPTH} levels")
        try:
            tok = self.peek()
            if tok.kind == "kw" and tok.text == "not":
                self.take()
                return Not(self.parse_unary())
            if tok.kind == "punct" and tok.text == "(":
                self.take()
                node = self.parse_or()
                self.expect_punct(")", "')' to close the '(' at position " + str(tok.pos))
                return node
            return self.parse_test()
        finally:
            self.depth -= 1

    def literal(self, what: str) -> tuple[Literal, _Tok]:
        tok = self.peek()
        if tok.kind == "num":
            self.take()
            v = tok.value
            assert isinstance(v, (int, float))
            if isinstance(v, float) and not math.isfinite(v):
                raise self.error("number out of range", tok)
            return v, tok
        if tok.kind == "str":
            self.take()
            assert isinstance(tok.value, str)
            return tok.value, tok
        if tok.kind == "kw" and tok.text in ("true", "false"):
            self.take()
            return tok.text == "true", tok
        if tok.kind == "path":
            raise self.error(f'expected {what}; quote strings: "{tok.text}"')
        raise self.error(f"expected {what}")

    def parse_test(self) -> Node:
        ftok = self.peek()
        if ftok.kind != "path":
            if ftok.kind == "end":
                raise self.error("expected a field such as config.lr")
            raise self.error(f"expected a field such as config.lr, found {ftok.text!r}")
        self.take()
        field = _field(ftok.text, self.expression, ftok.pos)
        negate = False
        if self.is_kw("not"):
            self.take()
            negate = True
            nxt = self.peek()
            if not (nxt.kind == "kw" and nxt.text in ("in", "like", "exists")):
                raise self.error("expected 'in', 'like' or 'exists' after 'not'")
        tok = self.peek()
        node: Node
        if tok.kind == "op":
            self.take()
            op = _OPS[tok.text]
            value, vtok = self.literal(f'a number, a "string", true or false after {tok.text!r}')
            node = Compare(field, op, self.check(field, op, value, vtok))
        elif tok.kind == "kw" and tok.text == "in":
            self.take()
            self.expect_punct("(", "'(' after 'in'")
            values: list[Literal] = []
            while True:
                value, vtok = self.literal("a value in the list")
                values.append(self.check(field, "in", value, vtok))
                if self.peek().kind == "punct" and self.peek().text == ",":
                    self.take()
                    continue
                self.expect_punct(")", "',' or ')' in the list")
                break
            node = InList(field, tuple(values))
        elif tok.kind == "kw" and tok.text == "like":
            self.take()
            ptok = self.peek()
            if ptok.kind != "str":
                raise self.error("expected a \"glob*\" string after 'like'")
            self.take()
            if field.kind in NUMERIC_COLUMNS:
                raise self.error(f"{field} is a number; 'like' needs a text field", ptok)
            assert isinstance(ptok.value, str)
            node = Like(field, ptok.value)
        elif tok.kind == "kw" and tok.text == "exists":
            self.take()
            node = Exists(field)
        else:
            raise self.error(
                f"expected an operator (= != < <= > >=, in, like, exists) after {ftok.text!r}"
            )
        return Not(node) if negate else node

    def check(self, field: Field, op: str, value: Literal, tok: _Tok) -> Literal:
        """Type-check ``field op value``; return the value to compare (times become epoch seconds)."""
        if isinstance(value, bool) and op not in ("=", "!=", "in"):
            raise self.error(f"true/false can only be compared with = or !=, not {op!r}", tok)
        if field.kind in STRING_COLUMNS or field.kind == "tags":
            if not isinstance(value, str):
                raise self.error(
                    f'{field} is text: compare it with a "string", not {tok.text}', tok
                )
            if field.kind == "tags" and op not in ("=", "!=", "in"):
                raise self.error(
                    f'tags are a set: use tags = "x", tags in (...), tags like "x*" or tags exists, not {op!r}',
                    tok,
                )
            if field.kind == "status" and op in ("=", "!=", "in") and value not in STATUSES:
                raise self.error(f"unknown status {value!r}: one of {', '.join(STATUSES)}", tok)
            return value
        if field.kind in NUMERIC_COLUMNS:
            if isinstance(value, bool):
                raise self.error(f"{field} is a number, not true/false", tok)
            if isinstance(value, str):
                if field.kind == "seed":
                    raise self.error(
                        f"seed is a number: compare it with a number, not {tok.text}", tok
                    )
                return _to_epoch(value, self.expression, tok.pos)
            return value
        return value


def parse(expression: str) -> Node:
    """Parse and type-check ``expression``; raise InvalidFilterError with its position on failure."""
    if not isinstance(expression, str):
        raise InvalidFilterError(f"a filter must be a string, not {type(expression).__name__}")
    if len(expression) > MAX_LENGTH:
        raise InvalidFilterError(
            f"the filter is longer than {MAX_LENGTH} characters", expression[:60] + "…", None
        )
    return _Parser(expression).parse()
