"""Which shard files a record's script will open, worked out from its source without running it.

A nanogpt script names its data in one of a few ways (a class field such as `train_files = "data/..."`, the
same joined with `os.environ.get("DATA_PATH", ".")`, `os.environ["NANOGPT_TRAIN_FILES"]`, f-strings,
later `args.train_files = os.path.join(...)` reassignments). `resolve_data(source, cwd, env)` parses the
script with `ast`, evaluates those expressions in statement order against the run's environment, and globs
the resulting patterns the way the script does (`glob.glob`, or `Path.cwd().glob`, which refuses absolute
patterns before Python 3.13). No GPU, no torch, no execution of the script.
"""

from __future__ import annotations

import ast
import glob as globlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

TRAIN_NAMES = ("train_files", "input_bin", "train_bin")
VAL_NAMES = ("val_files", "input_val_bin", "val_bin")


class Unresolved(Exception):
    """An expression this evaluator cannot work out statically."""


@dataclass
class DataResolution:
    train_pattern: str | None = None
    val_pattern: str | None = None
    train_files: list[str] = field(default_factory=list)
    val_files: list[str] = field(default_factory=list)
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None and bool(self.train_files) and bool(self.val_files)

    def status(self) -> str:
        """'ok' or the reason the run would find no data."""
        if self.ok:
            return "ok"
        return self.problem or "no data files found"


@dataclass
class _Binding:
    name: str
    value: Any  # str/int/... or an Unresolved instance


class _Evaluator:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = dict(env)
        self.module: dict[str, Any] = {}
        self.fields: dict[str, Any] = {}  # class-level fields of any class (args = Hyperparameters())
        self.attrs: dict[str, Any] = {}  # obj.attr = ... reassignments
        self.data: list[_Binding] = []  # every binding of a data name, in statement order

    # -- statements -------------------------------------------------------------------------------------
    def run(self, body: list[ast.stmt], scope: dict[str, Any] | None = None) -> None:
        for stmt in body:
            if isinstance(stmt, ast.ClassDef):
                class_scope: dict[str, Any] = {}
                self.run(stmt.body, class_scope)
                self.fields.update(class_scope)
            elif isinstance(stmt, ast.Assign):
                for target in stmt.targets:
                    self._bind(target, stmt.value, scope)
            elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
                self._bind(stmt.target, stmt.value, scope)
            elif isinstance(stmt, (ast.If, ast.With, ast.Try)):
                self.run(list(getattr(stmt, "body", [])), scope)
                self.run(list(getattr(stmt, "orelse", [])), scope)

    def _bind(self, target: ast.expr, value_node: ast.expr, scope: dict[str, Any] | None) -> None:
        try:
            value: Any = self.eval(value_node, scope)
        except Unresolved as exc:
            value = exc
        except Exception as exc:  # noqa: BLE001 - any evaluation accident means "unknown", never a crash
            value = Unresolved(f"cannot evaluate {ast.unparse(value_node)[:80]} ({type(exc).__name__})")
        if isinstance(target, ast.Name):
            (scope if scope is not None else self.module)[target.id] = value
            name = target.id
        elif isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name):
            self.attrs[f"{target.value.id}.{target.attr}"] = value
            name = target.attr
        else:
            return
        if name in TRAIN_NAMES or name in VAL_NAMES:
            self.data.append(_Binding(name, value))

    # -- expressions ------------------------------------------------------------------------------------
    def eval(self, node: ast.expr, scope: dict[str, Any] | None = None) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.JoinedStr):
            return "".join(self._format_part(part, scope) for part in node.values)
        if isinstance(node, ast.BinOp):
            left, right = self.eval(node.left, scope), self.eval(node.right, scope)
            if isinstance(node.op, ast.Add) and isinstance(left, str) and isinstance(right, str):
                return left + right
            if isinstance(node.op, ast.Div) and isinstance(left, str) and isinstance(right, str):
                return os.path.join(left, right)  # Path(...) / "x"
            if isinstance(left, (int, float)) and isinstance(right, (int, float)):
                return _arith(node.op, left, right)
            raise Unresolved(f"cannot evaluate {ast.unparse(node)[:80]}")
        if isinstance(node, ast.Name):
            return self._lookup(node.id, scope)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            key = f"{node.value.id}.{node.attr}"
            if key in self.attrs:
                return _value(self.attrs[key])
            if node.attr in self.fields:
                return _value(self.fields[node.attr])
            raise Unresolved(f"{key} is not set in the script")
        if isinstance(node, ast.Subscript) and _dotted(node.value) == "os.environ":
            key = self.eval(node.slice, scope)
            if key not in self.env:
                raise Unresolved(f"the script reads the environment variable {key}, which the run does not set")
            return self.env[key]
        if isinstance(node, ast.Call):
            return self._call(node, scope)
        raise Unresolved(f"cannot evaluate {ast.unparse(node)[:80]}")

    def _format_part(self, part: ast.expr, scope: dict[str, Any] | None) -> str:
        if isinstance(part, ast.Constant):
            return str(part.value)
        if isinstance(part, ast.FormattedValue):
            value = self.eval(part.value, scope)
            spec = "".join(self._format_part(p, scope) for p in part.format_spec.values) if part.format_spec else ""
            return format(value, spec)
        raise Unresolved("unsupported f-string part")

    def _call(self, node: ast.Call, scope: dict[str, Any] | None) -> Any:
        name = _dotted(node.func)
        args = [self.eval(a, scope) for a in node.args]
        if name in ("os.path.join", "join"):
            return os.path.join(*[str(a) for a in args])
        if name in ("os.environ.get", "os.getenv"):
            key = args[0]
            default = args[1] if len(args) > 1 else None
            value = self.env.get(key, default)
            if value is None:
                raise Unresolved(f"the script reads the environment variable {key}, which the run does not set")
            return value
        if name in ("str", "Path", "pathlib.Path", "os.fspath"):
            return str(args[0]) if args else ""
        if name in ("int",):
            return int(args[0])
        if name in ("os.path.expanduser",):
            return os.path.expanduser(str(args[0]))
        raise Unresolved(f"cannot evaluate the call {ast.unparse(node)[:80]}")

    def _lookup(self, name: str, scope: dict[str, Any] | None) -> Any:
        for table in (scope, self.module):
            if table is not None and name in table:
                return _value(table[name])
        raise Unresolved(f"{name} is not set before it is used")


def _value(value: Any) -> Any:
    if isinstance(value, Unresolved):
        raise value
    return value


def _arith(op: ast.operator, a: float, b: float) -> float:
    if isinstance(op, ast.Add):
        return a + b
    if isinstance(op, ast.Sub):
        return a - b
    if isinstance(op, ast.Mult):
        return a * b
    if isinstance(op, ast.FloorDiv):
        return a // b
    raise Unresolved("unsupported arithmetic")


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def data_patterns(source: str, env: Mapping[str, str]) -> tuple[Any, Any]:
    """The (train, val) patterns a script ends up with: strings, or Unresolved with the reason."""
    tree = ast.parse(source)
    ev = _Evaluator(env)
    ev.run(tree.body)
    train = next((b.value for b in reversed(ev.data) if b.name in TRAIN_NAMES), Unresolved("no train data pattern found"))
    val = next((b.value for b in reversed(ev.data) if b.name in VAL_NAMES), Unresolved("no val data pattern found"))
    return train, val


def resolve_data(source: str, cwd: Path, env: Mapping[str, str]) -> DataResolution:
    """Which train and val shards the script would open when run in `cwd` with `env`."""
    result = DataResolution()
    try:
        train, val = data_patterns(source, env)
    except SyntaxError as exc:
        result.problem = f"the script does not parse (line {exc.lineno}: {exc.msg})"
        return result
    path_glob = "Path.cwd().glob(" in source
    problems = []
    for split, pattern in (("train", train), ("val", val)):
        if isinstance(pattern, Unresolved):
            problems.append(f"{split} data: {pattern}")
            continue
        pattern = str(pattern)
        setattr(result, f"{split}_pattern", pattern)
        if path_glob and os.path.isabs(pattern):
            problems.append(f"{split} data: {pattern} is absolute, but the script globs with Path.cwd().glob, "
                            "which takes relative patterns only")
            continue
        full = pattern if os.path.isabs(pattern) else os.path.join(str(cwd), pattern)
        files = sorted(globlib.glob(full))
        setattr(result, f"{split}_files", files)
        if not files:
            where = "an absolute path" if os.path.isabs(pattern) else f"relative to {cwd}"
            problems.append(f"{split} data: no file matches {pattern} ({where})")
    result.problem = "; ".join(problems) or None
    return result


__all__ = ["DataResolution", "TRAIN_NAMES", "VAL_NAMES", "Unresolved", "data_patterns", "resolve_data"]
