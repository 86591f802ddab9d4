"""The ``--where`` filter language: comparisons over manifest columns, and nothing that can run code.

Why not ``DataFrame.query``: on pandas' python engine ``@os.system('…') == 0`` or ``__import__('os')…`` runs
whatever a command line, a pipeline recipe or a loader argument says (``data-contract.md``, security rules).
This module tokenises and parses the expression itself (recursive descent, no ``eval``, ``compile`` or ``ast``)
into a small tree and evaluates it with vectorised pandas operations, so an expression can only ever compare
columns with literals.

Grammar (keywords are case-sensitive; ``true``/``false``/``null`` are accepted next to Python's spellings)::

    expr    := and ("or" and)*
    and     := not ("and" not)*
    not     := "not" not | "(" expr ")" | test
    test    := value [ ("==" | "!=" | "<" | "<=" | ">" | ">=") value
                     | ["not"] "in" "[" [literal ("," literal)* [","]] "]" ]
    value   := column | literal
    literal := 'string' | "string" | number | True | False | None

A column is an identifier (``[A-Za-z_][A-Za-z0-9_]*``) naming a manifest column, or any name in backticks.
``col == None`` tests for missing values; comparisons with a missing value are otherwise false.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pandas as pd

from sardata.errors import ConfigError

__all__ = ["parse_where", "where_mask", "filter_frame"]

_TOKEN = re.compile(
    r"""(?P<ws>\s+)
      | (?P<num>[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?)
      | (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<quoted>`[^`]+`)
      | (?P<op>==|!=|<=|>=|<|>|\(|\)|\[|\]|,)""",
    re.VERBOSE,
)
_KEYWORDS = {"and", "or", "not", "in"}
_CONSTANTS: dict[str, Any] = {"True": True, "False": False, "None": None, "true": True, "false": False, "null": None}
_COMPARE = ("==", "!=", "<", "<=", ">", ">=")
_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", "'": "'", '"': '"'}
MAX_LENGTH = 4096  # a filter is one line; this also bounds recursion depth


@dataclass(frozen=True)
class _Tok:
    kind: str  # num | str | name | col | kw | const | op | end
    value: Any
    pos: int


@dataclass(frozen=True)
class Column:
    name: str
    pos: int


@dataclass(frozen=True)
class Literal:
    value: Any


@dataclass(frozen=True)
class Compare:
    op: str
    left: Column | Literal
    right: Column | Literal
    pos: int


@dataclass(frozen=True)
class IsIn:
    value: Column | Literal
    items: tuple[Any, ...]
    negate: bool


@dataclass(frozen=True)
class Truth:
    value: Column | Literal


@dataclass(frozen=True)
class BoolOp:
    op: str  # and | or | not
    args: tuple[Any, ...]


def _error(expr: str, pos: int, what: str) -> ConfigError:
    near = expr[pos : pos + 20] or "end of expression"
    return ConfigError(
        f"--where {expr!r}: {what} at position {pos} (near {near!r}); the filter language allows comparisons "
        "(== != < <= > >=), in / not in [...], and / or / not, parentheses, column names and literals only"
    )


def _unquote(raw: str) -> str:
    body, out, i = raw[1:-1], [], 0
    while i < len(body):
        if body[i] == "\\" and i + 1 < len(body):
            out.append(_ESCAPES.get(body[i + 1], "\\" + body[i + 1]))
            i += 2
        else:
            out.append(body[i])
            i += 1
    return "".join(out)


def _tokens(expr: str) -> list[_Tok]:
    """Split ``expr`` into tokens; anything outside the language (``@``, ``.``, ``=``, operators) is an error."""
    out: list[_Tok] = []
    pos = 0
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if m is None:
            raise _error(expr, pos, f"unexpected character {expr[pos]!r}")
        kind, text = m.lastgroup or "", m.group()
        if kind == "num":
            prev = out[-1] if out else None
            if text[0] in "+-" and prev is not None and prev.kind in ("num", "str", "name", "col", "const"):
                raise _error(expr, pos, "arithmetic is not supported")
            out.append(_Tok("num", float(text) if re.search(r"[.eE]", text) else int(text), pos))
        elif kind == "str":
            out.append(_Tok("str", _unquote(text), pos))
        elif kind == "name":
            if text in _KEYWORDS:
                out.append(_Tok("kw", text, pos))
            elif text in _CONSTANTS:
                out.append(_Tok("const", _CONSTANTS[text], pos))
            else:
                out.append(_Tok("col", text, pos))
        elif kind == "quoted":
            out.append(_Tok("col", text[1:-1], pos))
        elif kind == "op":
            out.append(_Tok("op", text, pos))
        pos = m.end()
    out.append(_Tok("end", None, len(expr)))
    return out


class _Parser:
    """Recursive descent over the token list; every rule either consumes tokens or raises with a position."""

    def __init__(self, expr: str) -> None:
        self.expr, self.toks, self.i = expr, _tokens(expr), 0

    def peek(self, kind: str, value: Any = None) -> bool:
        t = self.toks[self.i]
        return t.kind == kind and (value is None or t.value == value)

    def take(self) -> _Tok:
        t = self.toks[self.i]
        self.i += 1
        return t

    def expect(self, kind: str, value: Any, what: str) -> _Tok:
        if not self.peek(kind, value):
            raise _error(self.expr, self.toks[self.i].pos, f"expected {what}")
        return self.take()

    def parse(self) -> Any:
        node = self.or_()
        if not self.peek("end"):
            raise _error(self.expr, self.toks[self.i].pos, "unexpected token")
        return node

    def or_(self) -> Any:
        return self._chain("or", self.and_)

    def and_(self) -> Any:
        return self._chain("and", self.not_)

    def _chain(self, op: str, operand: Any) -> Any:
        """``operand (op operand)*``: one node for a run of the same boolean operator."""
        args = [operand()]
        while self.peek("kw", op):
            self.take()
            args.append(operand())
        return args[0] if len(args) == 1 else BoolOp(op, tuple(args))

    def not_(self) -> Any:
        if self.peek("kw", "not"):
            self.take()
            return BoolOp("not", (self.not_(),))
        if self.peek("op", "("):
            self.take()
            node = self.or_()
            self.expect("op", ")", "')'")
            return node
        return self.test()

    def value(self) -> Column | Literal:
        t = self.toks[self.i]
        if t.kind == "col":
            self.take()
            return Column(t.value, t.pos)
        if t.kind in ("num", "str", "const"):
            self.take()
            return Literal(t.value)
        raise _error(self.expr, t.pos, "expected a column name or a literal")

    def literal(self) -> Any:
        t = self.toks[self.i]
        if t.kind not in ("num", "str", "const"):
            raise _error(self.expr, t.pos, "expected a literal (string, number, True/False/None) in the list")
        self.take()
        return t.value

    def test(self) -> Any:
        left = self.value()
        t = self.toks[self.i]
        if t.kind == "op" and t.value in _COMPARE:
            self.take()
            return Compare(t.value, left, self.value(), t.pos)
        negate = False
        if self.peek("kw", "not"):
            self.take()
            negate = True
            if not self.peek("kw", "in"):
                raise _error(self.expr, self.toks[self.i].pos, "expected 'in' after 'not'")
        if self.peek("kw", "in"):
            self.take()
            self.expect("op", "[", "'[' starting a list literal")
            items: list[Any] = []
            while not self.peek("op", "]"):
                items.append(self.literal())
                if not self.peek("op", "]"):
                    self.expect("op", ",", "',' or ']'")
            self.take()
            return IsIn(left, tuple(items), negate)
        return Truth(left)


def parse_where(expr: str) -> Any:
    """Parse a filter into its tree (no evaluation); :class:`ConfigError` naming the position on bad syntax."""
    if not isinstance(expr, str) or not expr.strip():
        raise ConfigError(f"--where {expr!r}: empty filter")
    if len(expr) > MAX_LENGTH:
        raise ConfigError(f"--where: filter is {len(expr)} characters long, at most {MAX_LENGTH} are allowed")
    return _Parser(expr).parse()


def _columns(node: Any) -> list[Column]:
    if isinstance(node, Column):
        return [node]
    if isinstance(node, Compare):
        return _columns(node.left) + _columns(node.right)
    if isinstance(node, (IsIn, Truth)):
        return _columns(node.value)
    if isinstance(node, BoolOp):
        return [c for a in node.args for c in _columns(a)]
    return []


def _operand(df: pd.DataFrame, v: Column | Literal) -> Any:
    return df[v.name] if isinstance(v, Column) else v.value


def _compare(df: pd.DataFrame, node: Compare) -> pd.Series:
    left, right = _operand(df, node.left), _operand(df, node.right)
    if node.op in ("==", "!=") and (left is None or right is None):  # "col == None": a missing-value test
        other = right if left is None else left
        missing = other.isna() if isinstance(other, pd.Series) else pd.Series(other is None, index=df.index)
        return missing if node.op == "==" else ~missing
    ops = {"==": "eq", "!=": "ne", "<": "lt", "<=": "le", ">": "gt", ">=": "ge"}
    if isinstance(left, pd.Series):
        out = getattr(left, ops[node.op])(right)
    elif isinstance(right, pd.Series):
        flipped = {"==": "eq", "!=": "ne", "<": "gt", "<=": "ge", ">": "lt", ">=": "le"}
        out = getattr(right, flipped[node.op])(left)
    else:
        out = pd.Series(bool(getattr(pd.Series([left]), ops[node.op])(right).iloc[0]), index=df.index)
    return out.fillna(False).astype(bool)


def _eval(df: pd.DataFrame, node: Any) -> pd.Series:
    if isinstance(node, Compare):
        return _compare(df, node)
    if isinstance(node, IsIn):
        value = _operand(df, node.value)
        series = value if isinstance(value, pd.Series) else pd.Series([value] * len(df), index=df.index)
        mask = series.isin(list(node.items)).astype(bool)
        return ~mask if node.negate else mask
    if isinstance(node, Truth):
        value = _operand(df, node.value)
        if isinstance(value, pd.Series):
            if not pd.api.types.is_bool_dtype(value):
                name = node.value.name if isinstance(node.value, Column) else ""
                raise ConfigError(f"--where: column {name!r} is {value.dtype}, not boolean; compare it (== / in)")
            return value.fillna(False).astype(bool)
        return pd.Series(bool(value), index=df.index)
    if isinstance(node, BoolOp):
        parts = [_eval(df, a) for a in node.args]
        if node.op == "not":
            return ~parts[0]
        out = parts[0]
        for p in parts[1:]:
            out = (out & p) if node.op == "and" else (out | p)
        return out
    raise ConfigError(f"--where: unsupported node {type(node).__name__}")  # unreachable by construction


def where_mask(df: pd.DataFrame, expr: str) -> pd.Series:
    """Boolean row mask of ``df`` for the filter ``expr``.

    Raises:
        ConfigError: bad syntax (with the position), an unknown column (listing the available ones) or a
            comparison the column's type does not support.
    """
    tree = parse_where(expr)
    unknown = [c for c in _columns(tree) if c.name not in df.columns]
    if unknown:
        raise ConfigError(
            f"--where {expr!r}: unknown column {unknown[0].name!r} at position {unknown[0].pos}; available "
            f"columns: {', '.join(map(str, df.columns))}"
        )
    try:
        return _eval(df, tree)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:  # e.g. a string column compared with a number
        raise ConfigError(f"--where {expr!r}: {exc}") from exc


def filter_frame(df: pd.DataFrame, expr: str) -> pd.DataFrame:
    """The rows of ``df`` matching ``expr`` (see :func:`where_mask`)."""
    return df[where_mask(df, expr)]
