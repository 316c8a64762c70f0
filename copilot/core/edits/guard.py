"""Integrity guard: compare a candidate training script with the record's script on the Python AST and report
every change to what a fair speedrun must not change (FACTS.md §1.8, §3.1; DESIGN §6).

Protected facts of a track's script, each checked on the syntax tree rather than on lines:

- the score: the val loss printed on the val line is the value the validation routine computed (no min/max,
  rounding, clamping, constants, arithmetic or conditions on it, no assignment from anything else, no extra or
  literal val line), measured on the validation data;
- validation size (val_tokens, the validation loop's step count, the slices it reads) and the final-step
  validation (the last step still validates);
- data: shard file patterns, data env vars, the shard header check and token dtype, which loader training and
  validation read, and the order of the training stream;
- the clock: train_time accumulates elapsed time only, t0 restarts only after the elapsed time was added, the
  pauses hold no training work, torch.cuda.synchronize() still precedes the clock reads, nothing patches the
  clock;
- the log-line format the parser reads (`step:… val_loss:… train_time:…ms step_avg:…ms`);
- banned compile flags (torch._inductor.config, torch._dynamo.config, extra torch.compile modes/options);
- new process, network and code-loading calls, writes outside the workspace or into the run folder, and reads
  of secrets from the environment;
- micro-track scripts fence their validation set and target in a "do not change" block (compared as text).

Every finding is `block` (a protected fact changed, or a dangerous call was added) or `note` (worth seeing: a
protected area was refactored but its facts still hold). The base script's analysis is cached, so a session
checking many candidates against one record parses the record once.
"""

from __future__ import annotations

import ast
import gc
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any, Iterable, Iterator

BLOCK = "block"
NOTE = "note"

KINDS = ("data", "val_tokens", "validation", "timer", "log_format", "compile_flags", "process", "network",
         "code_loading", "filesystem", "secrets", "protected_block", "syntax")

# rule id -> (kind, why it matters to a fair score)
RULES: dict[str, tuple[str, str]] = {
    "syntax.unparsable": ("syntax", "a script that does not parse cannot be checked, so its score cannot be trusted"),
    "protected_block.changed": ("protected_block", "the do-not-change block defines the track's validation set and target"),
    "val_loss.tampered": ("validation", "the score must be the val loss the validation routine computed, not a value derived from it"),
    "val_loss.fake_print": ("validation", "the parser takes the score from the val line, so an extra or literal val line forges it"),
    "validation.final_step_skipped": ("validation", "the score is the val loss after the last step; without that validation there is no final measurement"),
    "validation.early_exit": ("validation", "leaving the training loop early ends the run before its final measurement"),
    "validation.refactored": ("validation", "the validation code changed shape while its facts still hold; worth a look"),
    "val_tokens.changed": ("val_tokens", "the benchmark fixes the number of validation tokens; fewer make the val loss cheaper and noisier"),
    "val_tokens.steps_refactored": ("val_tokens", "the validation step count is derived differently but still from val_tokens; worth a look"),
    "data.changed": ("data", "the rules fix the training and validation token streams and their files"),
    "data.location_changed": ("data", "the data folder changed while the file patterns stayed; check it points at the real shards"),
    "data.seed_changed": ("data", "the runner sets the seeds of repeated runs; a fixed or shifted seed can pick a lucky run"),
    "data.seed_added": ("data", "a random seed is now fixed by the script; worth a look"),
    "data.val_source_changed": ("data", "the val loss must be measured on the validation shard, nothing else"),
    "data.train_source_changed": ("data", "training must read the training shards and never the validation set"),
    "data.stream_reordered": ("data", "the rules fix the order of the training token stream"),
    "timer.restart": ("timer", "train_time must cover all training work; restarting or pausing the clock around work hides it"),
    "timer.shrunk": ("timer", "the time to target is read from train_time; lowering or scaling it fakes speed"),
    "timer.sync_removed": ("timer", "without a CUDA synchronize before the clock read, queued GPU work escapes the timer"),
    "timer.patched": ("timer", "replacing the clock, synchronize or print lets a run report any time"),
    "timer.pause_added": ("timer", "the clock is paused around new code that holds no training work; worth a look"),
    "log_format.changed": ("log_format", "the parser reads the score, step and time from the val line's exact format"),
    "log_format.train_line_changed": ("log_format", "the per-step train line changed format; the chart reads it"),
    "compile_flags.banned": ("compile_flags", "extra torch.compile/inductor/dynamo flags are banned upstream since record 21"),
    "compile_flags.limit_changed": ("compile_flags", "a dynamo recompile/cache limit changed; it affects compilation, not the kernels"),
    "process.spawn": ("process", "a training script has no reason to run other programs; a process can fetch, patch or fake anything"),
    "process.nvidia_smi": ("process", "nvidia-smi without arguments only prints the hardware; worth a look"),
    "network.call": ("network", "a run must not reach the network: it could fetch reference results or trained weights"),
    "code_loading.dynamic": ("code_loading", "code built or loaded at run time cannot be checked by the guard"),
    "code_loading.weights": ("code_loading", "loading saved weights or pickles brings in work done outside the timed run"),
    "code_loading.extension": ("code_loading", "a compiled extension is loaded; its source should be in the workspace"),
    "filesystem.outside_write": ("filesystem", "writes outside the workspace can tamper with the runner, other runs or the session"),
    "filesystem.run_folder": ("filesystem", "the run folder holds the output log the score is read from"),
    "filesystem.outside_read": ("filesystem", "reading files outside the workspace can pull in reference values"),
    "secrets.read": ("secrets", "a training script must never read credentials from the environment"),
}


@dataclass(frozen=True)
class Finding:
    rule: str  # stable id, e.g. "val_loss.tampered"
    kind: str  # area, one of KINDS
    severity: str  # BLOCK | NOTE
    line: int  # 1-based, in the new text (where == "new") or in the base text (where == "base"); 0 if unknown
    where: str  # "new" | "base"
    text: str  # the source line, stripped
    reason: str  # one line: what changed
    why: str  # one line: why it matters to a fair score

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Finding":
        rule = str(data.get("rule") or "")
        kind, why = RULES.get(rule, (str(data.get("kind") or ""), ""))
        severity = str(data.get("severity") or BLOCK)
        return cls(
            rule=rule,
            kind=str(data.get("kind") or kind),
            severity=NOTE if severity in (NOTE, "warn") else BLOCK,
            line=int(data.get("line") or 0),
            where=str(data.get("where") or "new"),
            text=str(data.get("text") or ""),
            reason=str(data.get("reason") or ""),
            why=str(data.get("why") or why),
        )


@dataclass
class GuardReport:
    findings: list[Finding] = field(default_factory=list)

    @property
    def blocking(self) -> bool:
        return any(f.severity == BLOCK for f in self.findings)

    @property
    def blocks(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == BLOCK]

    @property
    def notes(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == NOTE]

    def summary(self) -> str:
        if not self.findings:
            return "no protected part touched"
        parts = []
        for label, group in (("blocking", self.blocks), ("notes", self.notes)):
            if group:
                rules = Counter(f.rule for f in group)
                parts.append(f"{label}: " + ", ".join(f"{r}×{n}" if n > 1 else r for r, n in rules.items()))
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {"blocking": self.blocking, "findings": [f.to_dict() for f in self.findings]}


# ==================================================================================================== names

# Wall clocks. time.process_time / thread_time count CPU time only (not the GPU work a step waits for), so a switch
# to them reads as a new way of timing.
_CLOCKS = frozenset({
    "time.perf_counter", "time.time", "time.monotonic", "time.perf_counter_ns", "time.time_ns", "time.monotonic_ns",
})
_EXITS = frozenset({"sys.exit", "exit", "quit", "os._exit", "os.abort", "builtins.exit"})
_PROCESS_EXACT = frozenset({
    "os.system", "os.popen", "os.fork", "os.forkpty", "os.kill", "os.killpg", "os.posix_spawn", "os.posix_spawnp",
    "os.startfile", "platform.popen", "asyncio.create_subprocess_exec", "asyncio.create_subprocess_shell",
})
_PROCESS_PREFIX = ("subprocess.", "pty.", "os.exec", "os.spawn", "pexpect.", "plumbum.", "sh.")
_PROCESS_MODULES = frozenset({"subprocess", "pty", "pexpect", "plumbum", "sh"})
_NETWORK_MODULES = frozenset({
    "socket", "ssl", "urllib", "urllib3", "http", "requests", "httpx", "aiohttp", "ftplib", "smtplib", "telnetlib",
    "poplib", "imaplib", "nntplib", "xmlrpc", "websocket", "websockets", "paramiko", "pycurl", "grpc",
    "huggingface_hub", "wget", "webbrowser", "zmq", "socketserver",
})
_NETWORK_EXACT = frozenset({"asyncio.open_connection", "asyncio.start_server", "datasets.load_dataset"})
_NETWORK_PREFIX = ("torch.hub.",)
_CODE_MODULES = frozenset({"ctypes", "cffi", "importlib", "runpy", "imp", "marshal", "pickle", "dill", "cloudpickle",
                           "shelve", "zipimport", "code", "codeop"})
_DYNAMIC_CODE = frozenset({
    "eval", "exec", "compile", "__import__", "builtins.eval", "builtins.exec", "builtins.compile",
    "importlib.import_module", "importlib.__import__", "importlib.reload", "importlib.util.spec_from_file_location",
    "importlib.util.module_from_spec", "importlib.machinery.SourceFileLoader", "runpy.run_path", "runpy.run_module",
    "imp.load_source", "imp.load_module", "types.CodeType", "types.FunctionType", "code.interact",
    "zipimport.zipimporter", "codeop.compile_command",
})
_UNPICKLE = frozenset({
    "pickle.load", "pickle.loads", "pickle.Unpickler", "marshal.load", "marshal.loads", "dill.load", "dill.loads",
    "cloudpickle.load", "cloudpickle.loads", "shelve.open", "torch.load", "joblib.load", "safetensors.torch.load_file",
    "safetensors.safe_open", "torch.jit.load", "numpy.load",
})
_EXTENSIONS = frozenset({"torch.utils.cpp_extension.load", "torch.utils.cpp_extension.load_inline",
                         "torch.ops.load_library", "torch.classes.load_library"})
_GETATTR_TARGETS = frozenset({"os", "subprocess", "socket", "builtins", "__builtins__", "importlib", "ctypes", "sys",
                              "pty", "shutil", "requests", "urllib", "http"})
_DANGEROUS_NAMES = frozenset({"system", "popen", "exec", "eval", "compile", "__import__", "import_module", "spawn",
                              "execv", "execve", "execvp", "run", "Popen", "check_output", "call", "urlopen"})

_SECRET_KEY = re.compile(
    r"(_KEY|_TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|_PAT)$|^(OPENAI_|AWS_|GITHUB_|ANTHROPIC_|HF_TOKEN|"
    r"HUGGING_FACE_HUB_TOKEN|HUGGINGFACE_|GOOGLE_|AZURE_|GH_)|SECRET|PASSWORD|API_KEY|TOKEN",
    re.IGNORECASE,
)
_RUN_FOLDER_ENV = frozenset({"SPEEDCOPILOT_RUN_DIR", "SPEEDCOPILOT_RUN_ID"})
_DATA_ENV = re.compile(r"DATA|SHARD|FINEWEB|_FILES$|_BIN$", re.IGNORECASE)
_COMPILE_ENV = re.compile(r"^(TORCHINDUCTOR_|TORCH_COMPILE|TORCHDYNAMO_|INDUCTOR_)", re.IGNORECASE)
_DATA_STRING = re.compile(r"\.bin\b|fineweb", re.IGNORECASE)
_RUN_MARKERS = ("events.jsonl", "output.log", "run.json", ".speedcopilot", "sessions/")
_SHARD_MAGIC = 20240520
_DTYPE_MARKERS = frozenset({"<u2", "uint16", "u2", "=u2"})

# Calls that bend a value: the score may not pass through them (unless the base did the same).
_BENDING_CALLS = frozenset({
    "min", "max", "round", "abs", "math.floor", "math.ceil", "math.trunc", "math.fmin", "math.fmax", "math.isclose",
    "torch.clamp", "torch.clip", "torch.min", "torch.max", "torch.minimum", "torch.maximum", "torch.round",
    "torch.floor", "torch.ceil", "torch.where", "torch.nan_to_num", "torch.fmin", "torch.fmax",
    "numpy.clip", "numpy.minimum", "numpy.maximum", "numpy.round", "numpy.floor", "numpy.ceil", "numpy.where",
    "numpy.min", "numpy.max", "numpy.amin", "numpy.amax", "numpy.nan_to_num", "numpy.fmin", "numpy.fmax",
    "statistics.median", "sorted",
})
_BENDING_METHODS = frozenset({"clamp", "clamp_", "clip", "clip_", "clamp_min", "clamp_max", "clamp_min_", "clamp_max_",
                              "round", "round_", "floor", "floor_", "ceil", "ceil_", "min", "max", "minimum",
                              "maximum", "fmin", "fmax", "nan_to_num", "nan_to_num_", "fill_", "zero_", "__round__"})
# Calls that pass a value on unchanged in meaning (their inputs are traced).
_CARRYING_CALLS = frozenset({
    "float", "int", "sum", "torch.tensor", "torch.as_tensor", "torch.stack", "torch.cat", "torch.mean", "torch.sum",
    "numpy.mean", "numpy.sum", "numpy.array", "numpy.asarray", "numpy.float64", "numpy.float32", "statistics.mean",
    "statistics.fmean", "math.fsum", "torch.from_numpy", "torch.Tensor.item", "list", "tuple", "len",
})
_CARRYING_METHODS = frozenset({"item", "mean", "sum", "detach", "cpu", "cuda", "float", "double", "half", "bfloat16",
                               "tolist", "clone", "to", "view", "reshape", "squeeze", "unsqueeze", "numpy", "flatten",
                               "contiguous", "nanmean", "nansum", "div", "mul", "add", "sub", "append", "extend",
                               "add_", "sub_", "mul_", "div_", "copy_", "__float__"})
_ZERO_INIT = frozenset({"torch.zeros", "torch.zeros_like", "numpy.zeros", "numpy.zeros_like", "torch.empty",
                        "torch.tensor", "torch.as_tensor", "float", "int", "list", "dict"})
_MUTATORS = frozenset({"append", "extend", "insert", "add_", "sub_", "mul_", "div_", "copy_", "fill_", "clamp_",
                       "clamp_min_", "clamp_max_", "zero_", "addcmul_", "addcdiv_", "lerp_", "pow_", "neg_",
                       "abs_", "round_", "floor_", "ceil_", "sqrt_", "exp_", "log_", "set_", "clip_",
                       "nan_to_num_"})
_COLLECTIVES = ("all_reduce", "reduce", "all_gather", "all_gather_into_tensor", "reduce_scatter", "broadcast")
_SHUFFLES = frozenset({"shuffle", "permutation", "randperm", "sample", "choice", "choices", "reverse", "reversed",
                       "permuted", "rotate", "roll"})
_TRAIN_WORK = frozenset({"backward", "step", "zero_grad", "step_optimizers", "send", "next_batch"})
_LIMIT_FLAGS = frozenset({"recompile_limit", "cache_size_limit", "accumulated_cache_size_limit",
                          "accumulated_recompile_limit"})

_WRITE_METHODS = frozenset({"write_text", "write_bytes", "touch", "unlink", "rmdir", "rename", "replace",
                            "symlink_to", "hardlink_to", "chmod", "mkdir", "tofile"})
_WRITE_CALLS = {  # qualified name -> indexes of the path arguments
    "os.remove": (0,), "os.unlink": (0,), "os.rename": (0, 1), "os.replace": (0, 1), "os.makedirs": (0,),
    "os.mkdir": (0,), "os.rmdir": (0,), "os.removedirs": (0,), "os.symlink": (0, 1), "os.link": (0, 1),
    "os.chmod": (0,), "os.chown": (0,), "os.truncate": (0,), "os.utime": (0,), "os.chdir": (0,),
    "shutil.copy": (1,), "shutil.copy2": (1,), "shutil.copyfile": (1,), "shutil.copytree": (1,),
    "shutil.move": (0, 1), "shutil.rmtree": (0,), "shutil.copymode": (1,), "shutil.copystat": (1,),
    "shutil.make_archive": (0,), "shutil.unpack_archive": (1,), "torch.save": (1,), "numpy.save": (0,),
    "numpy.savez": (0,), "numpy.savetxt": (0,), "numpy.savez_compressed": (0,),
}
_READ_CALLS = {"numpy.fromfile": (0,), "numpy.memmap": (0,), "torch.from_file": (0,), "numpy.loadtxt": (0,),
               "numpy.genfromtxt": (0,), "json.load": (), "pathlib.Path.read_text": ()}


def _rule(rule: str, severity: str, script: "_Script | None", node: ast.AST | int | None, where: str,
          reason: str) -> Finding:
    kind, why = RULES[rule]
    line = node if isinstance(node, int) else int(getattr(node, "lineno", 0) or 0)
    text = script.line_text(line) if script is not None else ""
    return Finding(rule, kind, severity, line, where, text, reason, why)


# ==================================================================================================== index


@dataclass(eq=False)
class _Def:
    """One binding of a name (or of an attribute name, keyed ".attr")."""

    name: str
    node: ast.AST  # the statement or call that binds
    value: ast.AST | None  # what is bound (the iterable for a for target, the call for a mutation)
    kind: str  # assign | aug | ann | for | with | param | import | def | mutate | collective | walrus | item
    op: str
    scope: ast.AST
    line: int


@dataclass(eq=False)
class _Template:
    """A string built for output that holds parser keys (an f-string, a %-format, a .format or a literal)."""

    node: ast.AST
    line: int
    text: str  # literal text with {} for each placeholder
    skeleton: str  # literal text with {spec} for each placeholder, stripped
    fields: list[tuple[str, ast.AST | None, str]]  # (key before the placeholder, expression, spec)
    literal: bool

    def field(self, key: str) -> ast.AST | None:
        return next((expr for k, expr, _ in self.fields if k == key), None)


class _Script:
    """A parsed script and the indexes every check uses (built in one pass over the tree)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.lines = text.splitlines()
        self.error: str | None = None
        try:
            self.tree: ast.Module = ast.parse(text)
        except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError) as exc:
            self.tree = ast.Module(body=[], type_ignores=[])
            line = getattr(exc, "lineno", None)
            msg = getattr(exc, "msg", None) or str(exc) or type(exc).__name__
            self.error = f"{msg} (line {line})" if line else msg
            self.error_line = int(line or 0)
        self.aliases: dict[str, str] = {}
        self.defs: dict[tuple[int, str], list[_Def]] = {}
        self.defs_by_name: dict[str, list[_Def]] = {}
        self.attr_defs: dict[str, list[_Def]] = {}
        self.functions: dict[str, list[ast.AST]] = {}
        self.calls: list[ast.Call] = []
        self.loops: list[ast.AST] = []
        self.strings: list[ast.Constant] = []
        self.magic: list[ast.AST] = []
        self.attr_stores: list[ast.Attribute] = []
        self.name_stores: list[tuple[str, ast.AST]] = []
        self.imports: list[tuple[str, ast.AST]] = []
        self.environ: list[ast.AST] = []
        self.returns: dict[int, list[ast.Return]] = {}
        self.jumps: list[ast.AST] = []  # break, return, raise SystemExit
        self.template_nodes: list[ast.AST] = []
        self.has_uint16 = False
        self.slices: list[ast.Subscript] = []
        self._calls_by_name: dict[str, list[ast.Call]] | None = None
        self._qual_cache: dict[int, str | None] = {}
        self._index()
        self.templates = [t for t in (_template(self, n) for n in self.template_nodes) if t is not None]
        self.templates.sort(key=lambda t: t.line)

    # -- small helpers
    def line_text(self, line: int) -> str:
        return self.lines[line - 1].strip() if 0 < line <= len(self.lines) else ""

    def qual(self, node: ast.AST | None) -> str | None:
        """The dotted name an expression refers to, with import aliases resolved ("np.load" -> "numpy.load")."""
        if node is None:
            return None
        key = id(node)
        if key in self._qual_cache:
            return self._qual_cache[key]
        result = self._qual(node, 0)
        self._qual_cache[key] = result
        return result

    def _qual(self, node: ast.AST, depth: int) -> str | None:
        if depth > 12:
            return None
        if isinstance(node, ast.Name):
            scope = self.scope_of(node)
            if scope is not self.tree and any(d.kind != "import" for d in self.defs.get((id(scope), node.id), ())):
                return node.id  # a local (a parameter named config is not torch._inductor.config)
            return self.aliases.get(node.id, node.id)
        if isinstance(node, ast.Attribute):
            base = self._qual(node.value, depth + 1)
            return f"{base}.{node.attr}" if base else None
        if isinstance(node, ast.Call):  # __import__("os").system, importlib.import_module("os").system
            func = self._qual(node.func, depth + 1)
            if func in ("__import__", "importlib.import_module") and node.args:
                arg = node.args[0]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    return arg.value
        return None

    def scope_of(self, node: ast.AST) -> ast.AST:
        """The function (or lambda) whose body holds a node, else the module; cached on the nodes passed."""
        scope = getattr(node, "_s", None)
        if scope is not None:
            return scope
        chain = [node]
        parent = getattr(node, "_p", None)
        while parent is not None:
            if type(parent) in _SCOPE_TYPES:
                scope = parent
                break
            scope = getattr(parent, "_s", None)
            if scope is not None:
                break
            chain.append(parent)
            parent = getattr(parent, "_p", None)
        if scope is None:
            scope = self.tree
        for n in chain:
            n._s = scope  # type: ignore[attr-defined]
        return scope

    # -- the one pass
    def _index(self) -> None:
        tree = self.tree
        tree._s = tree  # type: ignore[attr-defined]
        stack: list[ast.AST] = [tree]
        pending_imports: list[ast.AST] = []
        pop, push, fields_of, dispatch = stack.pop, stack.append, _FIELDS_CACHE.get, _DISPATCH.get
        AST, List, Name, Constant, Load = ast.AST, list, ast.Name, ast.Constant, ast.Load
        strings, name_stores, environ, magic = self.strings, self.name_stores, self.environ, self.magic
        while stack:
            node = pop()
            kind = type(node)
            fields = fields_of(kind)
            if fields is None:
                fields = _child_fields(kind)
            for name in fields:
                value = getattr(node, name, None)
                if value is None:
                    continue
                for child in (value if type(value) is List else (value,)):
                    child_kind = type(child)
                    if child_kind is Name:  # leaves are handled here, without a trip through the stack
                        child._p = node  # type: ignore[attr-defined]
                        if type(child.ctx) is not Load:
                            name_stores.append((child.id, child))
                        elif child.id == "environ":
                            environ.append(child)
                    elif child_kind is Constant:
                        child._p = node  # type: ignore[attr-defined]
                        leaf = child.value
                        if type(leaf) is str:
                            strings.append(child)
                        elif leaf == _SHARD_MAGIC and type(leaf) is int:
                            magic.append(child)
                    elif isinstance(child, AST):
                        child._p = node  # type: ignore[attr-defined]
                        push(child)
            code = dispatch(kind)
            if code is None:
                continue
            if code == 1:
                self.calls.append(node)
            elif code == 2:
                attr = node.attr
                if attr == "environ":
                    self.environ.append(node)
                elif attr == "uint16":
                    self.has_uint16 = True
                if type(node.ctx) is not Load:
                    self.attr_stores.append(node)
            elif code == 3:
                self.template_nodes.append(node)
            elif code == 4:
                sl = node.slice
                if type(sl) is ast.Slice and (sl.step is not None or sl.lower is not None):
                    self.slices.append(node)
            else:
                self._statement_bindings(node, kind, pending_imports)
        for node in sorted(pending_imports, key=lambda n: n.lineno):
            self._import(node)
        for call in self.calls:
            self._call_binding(call)
        for defs in self.defs.values():
            defs.sort(key=lambda d: d.line)

    def _statement_bindings(self, node: ast.AST, kind: type, pending_imports: list[ast.AST]) -> None:
        """What binds names, loops, returns and jumps (the rarer node types of the one pass)."""
        if kind is ast.Assign:
            for target in node.targets:
                self._bind(target, node.value, "assign", "", node, self.scope_of(node))
        elif kind is ast.AugAssign:
            self._bind(node.target, node.value, "aug", type(node.op).__name__, node, self.scope_of(node))
        elif kind is ast.AnnAssign:
            if node.value is not None:
                self._bind(node.target, node.value, "ann", "", node, self.scope_of(node))
        elif kind is ast.NamedExpr:
            self._bind(node.target, node.value, "walrus", "", node, self.scope_of(node))
        elif kind in (ast.For, ast.AsyncFor):
            self.loops.append(node)
            self._bind(node.target, node.iter, "for", "", node, self.scope_of(node))
        elif kind is ast.comprehension:
            self._bind(node.target, node.iter, "for", "", getattr(node, "_p", node), self.scope_of(node))
        elif kind is ast.While:
            self.loops.append(node)
        elif kind in (ast.With, ast.AsyncWith):
            for item in node.items:
                if item.optional_vars is not None:
                    self._bind(item.optional_vars, item.context_expr, "with", "", node, self.scope_of(node))
        elif kind in (ast.FunctionDef, ast.AsyncFunctionDef):
            self.functions.setdefault(node.name, []).append(node)
            self._add(_Def(node.name, node, None, "def", "", self.scope_of(node), node.lineno))
            args = node.args
            for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
                if arg is not None:
                    self._add(_Def(arg.arg, arg, None, "param", "", node, node.lineno))
        elif kind is ast.ClassDef:
            self._add(_Def(node.name, node, None, "def", "", self.scope_of(node), node.lineno))
        elif kind in (ast.Import, ast.ImportFrom):
            pending_imports.append(node)
        elif kind is ast.Return:
            self.returns.setdefault(id(self.scope_of(node)), []).append(node)
            self.jumps.append(node)
        elif kind is ast.Yield or kind is ast.YieldFrom:  # what a generator hands out counts as returned
            self.returns.setdefault(id(self.scope_of(node)), []).append(node)
        elif kind is ast.Break or kind is ast.Raise:
            self.jumps.append(node)

    def _import(self, node: ast.AST) -> None:
        scope = self.scope_of(node)
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    self.aliases[alias.asname] = alias.name
                    bound = alias.asname
                else:
                    bound = alias.name.split(".")[0]
                    self.aliases.setdefault(bound, bound)
                self.imports.append((alias.name, node))
                self._add(_Def(bound, node, None, "import", alias.name, scope, node.lineno))
        else:
            module = ("." * node.level) + (node.module or "")
            for alias in node.names:
                full = f"{module}.{alias.name}" if module else alias.name
                bound = alias.asname or alias.name
                if alias.name != "*":
                    self.aliases[bound] = full
                    self._add(_Def(bound, node, None, "import", full, scope, node.lineno))
                self.imports.append((full, node))

    def _add(self, d: _Def) -> None:
        if d.name.startswith("."):
            self.attr_defs.setdefault(d.name, []).append(d)
            return
        self.defs.setdefault((id(d.scope), d.name), []).append(d)
        self.defs_by_name.setdefault(d.name, []).append(d)

    def _bind(self, target: ast.AST, value: ast.AST | None, kind: str, op: str, stmt: ast.AST,
              scope: ast.AST) -> None:
        line = getattr(stmt, "lineno", 0)
        if isinstance(target, ast.Name):
            self._add(_Def(target.id, stmt, value, kind, op, scope, line))
            if isinstance(getattr(stmt, "_p", None), ast.ClassDef):  # class attribute, read as obj.attr
                self._add(_Def("." + target.id, stmt, value, kind, op, scope, line))
        elif isinstance(target, ast.Attribute):
            self._add(_Def("." + target.attr, stmt, value, kind, op, scope, line))
        elif isinstance(target, (ast.Tuple, ast.List)):
            elements = value.elts if isinstance(value, (ast.Tuple, ast.List)) else None
            if elements is not None and len(elements) == len(target.elts) and not any(
                    isinstance(e, ast.Starred) for e in target.elts):
                for t, v in zip(target.elts, elements):
                    self._bind(t, v, kind, op, stmt, scope)
            else:
                for t in target.elts:
                    self._bind(t, value, kind, op, stmt, scope)
        elif isinstance(target, ast.Starred):
            self._bind(target.value, value, kind, op, stmt, scope)
        elif isinstance(target, ast.Subscript):
            root = _root_name(target.value)
            if root is not None:
                self._add(_Def(root, stmt, value, "item", op, scope, line))

    def _call_binding(self, call: ast.Call) -> None:
        """In-place mutations (x.add_(v), xs.append(v)) and collectives (dist.all_reduce(x)) bind x too."""
        func = call.func
        scope = self.scope_of(call)
        if isinstance(func, ast.Attribute):
            if func.attr in _MUTATORS and isinstance(func.value, ast.Name):
                self._add(_Def(func.value.id, call, call, "mutate", func.attr, scope, call.lineno))
            elif func.attr in _COLLECTIVES and call.args and isinstance(call.args[0], ast.Name):
                qual = self.qual(func) or ""
                if "distributed" in qual or qual.startswith("dist."):
                    self._add(_Def(call.args[0].id, call, call, "collective", func.attr, scope, call.lineno))

    # -- lookups
    def defs_of(self, name: str, scope: ast.AST) -> list[_Def]:
        """Every binding of a name visible from a scope (the scope's own, else the module's)."""
        own = self.defs.get((id(scope), name))
        if own:
            return own
        if scope is not self.tree:
            return self.defs.get((id(self.tree), name), [])
        return []

    def reaching(self, name: str, scope: ast.AST, line: int, use: ast.AST | None = None) -> list[_Def]:
        """The bindings that most likely reach a use at `line`: walking back from the latest binding before it,
        every update (x += ..., x.append(...)) and every binding in a branch, down to the first plain
        binding that runs whenever the use does. Without one before the use: all of the scope's bindings
        (loop-carried), else the module's."""
        own = self.defs.get((id(scope), name))
        if not own:
            return self.defs.get((id(self.tree), name), []) if scope is not self.tree else []
        before = [d for d in own if d.line < line]
        if not before:
            return own
        out = []
        path = _use_path(use) if use is not None else None
        dominating = None
        for d in reversed(before):
            out.append(d)
            if len(out) >= 12:
                break
            if d.kind in ("assign", "ann", "for", "with", "walrus", "param", "import", "def") and \
                    (path is None or _dominates(d.node, path)):
                dominating = d
                break
        if use is not None:  # bindings later in an enclosing loop reach the use on the next iteration
            for loop in _loops_around(use, scope):
                if dominating is not None and _inside(dominating.node, loop):
                    break
                out.extend(d for d in own if d.line >= line and d not in out and _inside(d.node, loop))
        return out

    def function_named(self, func: ast.AST) -> ast.AST | None:
        """The module's own function a call refers to (by name, or as self.name / obj.name)."""
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
        if name is None or (isinstance(func, ast.Name) and name in self.aliases):
            return None
        found = self.functions.get(name)
        return found[-1] if found else None

    def calls_named(self, *names: str) -> list[ast.Call]:
        """The calls whose callee is spelled with one of these last names (f(...) or x.f(...))."""
        self.calls_to(None)
        index = self._calls_by_name or {}
        return [call for name in names for call in index.get(name, [])]

    def calls_to(self, function: ast.AST | None) -> list[ast.Call]:
        """The calls of a function by its name (f(...), self.f(...), obj.f(...))."""
        if self._calls_by_name is None:
            index: dict[str, list[ast.Call]] = {}
            for call in self.calls:
                func = call.func
                name = func.id if type(func) is ast.Name else func.attr if type(func) is ast.Attribute else None
                if name is not None:
                    index.setdefault(name, []).append(call)
            self._calls_by_name = index
        return self._calls_by_name.get(getattr(function, "name", ""), [])


# Fields that never hold a child worth visiting: names and flags (strings, ints), and the operator and context
# singletons; import aliases are read from the Import node itself.
_SKIP_FIELDS = frozenset({"ctx", "op", "ops", "type_comment", "type_ignores", "id", "attr", "arg", "name", "module",
                          "level", "asname", "kind", "is_async", "conversion", "names"})
_FIELDS_CACHE: dict[type, tuple[str, ...]] = {ast.Constant: ()}
_SCOPE_TYPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
# Node types the one pass records (1 call, 2 attribute, 3 template candidate, 4 subscript, 5 a binding statement).
_DISPATCH: dict[type, int] = {ast.Call: 1, ast.Attribute: 2, ast.JoinedStr: 3, ast.BinOp: 3, ast.Subscript: 4}
_DISPATCH.update(dict.fromkeys((ast.Assign, ast.AugAssign, ast.AnnAssign, ast.NamedExpr, ast.For, ast.AsyncFor,
                                ast.comprehension, ast.While, ast.With, ast.AsyncWith, ast.FunctionDef,
                                ast.AsyncFunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom, ast.Return, ast.Yield,
                                ast.YieldFrom, ast.Break, ast.Raise), 5))


def _child_fields(kind: type) -> tuple[str, ...]:
    """The fields of a node type that can hold child nodes."""
    fields = _FIELDS_CACHE.get(kind)
    if fields is None:
        fields = tuple(f for f in getattr(kind, "_fields", ()) if f not in _SKIP_FIELDS)
        _FIELDS_CACHE[kind] = fields
    return fields


def _root_name(node: ast.AST) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _parents(node: ast.AST) -> Iterator[ast.AST]:
    node = getattr(node, "_p", None)
    while node is not None:
        yield node
        node = getattr(node, "_p", None)


def _inside(node: ast.AST, container: ast.AST) -> bool:
    return any(p is container for p in _parents(node))


def _loops_around(node: ast.AST, scope: ast.AST) -> Iterator[ast.AST]:
    """The loops that hold a node inside its scope, innermost first."""
    for parent in _parents(node):
        if parent is scope or type(parent) in _SCOPE_TYPES:
            return
        if type(parent) in (ast.For, ast.AsyncFor, ast.While):
            yield parent


def _use_path(use: ast.AST) -> dict[int, ast.AST]:
    """id(ancestor) -> the child on the way down to `use` (the use maps to itself)."""
    path = {id(use): use}
    child = use
    for parent in _parents(use):
        path[id(parent)] = child
        child = parent
    return path


def _dominates(stmt: ast.AST, use_path: dict[int, ast.AST]) -> bool:
    """Whether a binding statement runs whenever the use runs: no if/while/try between it and the block it
    shares with the use, and not in another branch of that block."""
    child = stmt
    for parent in _parents(stmt):
        if id(parent) in use_path:
            if type(parent) in (ast.If, ast.Try, ast.For, ast.While, ast.AsyncFor):
                return _branch(parent, child) == _branch(parent, use_path[id(parent)])
            return True
        if type(parent) in (ast.If, ast.While, ast.Try, ast.IfExp, ast.ExceptHandler):
            return False
        child = parent
    return True


def _branch(node: ast.AST, child: ast.AST) -> str:
    for name in ("body", "orelse", "finalbody", "handlers"):
        block = getattr(node, name, None)
        if isinstance(block, list) and any(c is child for c in block):
            return name
    return ""


def _walk(node: ast.AST, limit: int = 5000) -> Iterator[ast.AST]:
    """ast.walk, bounded (protects against pathological inputs), skipping operator/context singletons."""
    stack = [node]
    count = 0
    while stack and count < limit:
        current = stack.pop()
        count += 1
        yield current
        for name in _child_fields(type(current)):
            value = getattr(current, name, None)
            if value is None:
                continue
            if type(value) is list:
                stack.extend(c for c in value if isinstance(c, ast.AST))
            elif isinstance(value, ast.AST):
                stack.append(value)


def _statement(node: ast.AST) -> ast.AST:
    while not isinstance(node, ast.stmt):
        parent = getattr(node, "_p", None)
        if parent is None:
            return node
        node = parent
    return node


def _siblings_before(stmt: ast.AST) -> list[ast.AST]:
    """The statements before `stmt` in the statement list that holds it."""
    parent = getattr(stmt, "_p", None)
    if parent is None:
        return []
    for name in ("body", "orelse", "finalbody", "handlers"):
        block = getattr(parent, name, None)
        if isinstance(block, list):
            for i, item in enumerate(block):
                if item is stmt:
                    return block[:i]
    return []


def _siblings_after(stmt: ast.AST) -> list[ast.AST]:
    parent = getattr(stmt, "_p", None)
    if parent is None:
        return []
    for name in ("body", "orelse", "finalbody"):
        block = getattr(parent, name, None)
        if isinstance(block, list):
            for i, item in enumerate(block):
                if item is stmt:
                    return block[i + 1:]
    return []


def _number(node: ast.AST) -> float | int | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return node.value
    return None


def _const_eval(node: ast.AST | None, depth: int = 0) -> Any:
    """The value of a constant expression (numbers, + - * / // % **, unary -), else None."""
    if node is None or depth > 30:
        return None
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str)) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = _const_eval(node.operand, depth + 1)
        return (-v if isinstance(node.op, ast.USub) else v) if isinstance(v, (int, float)) else None
    if isinstance(node, ast.BinOp):
        a, b = _const_eval(node.left, depth + 1), _const_eval(node.right, depth + 1)
        if not isinstance(a, (int, float)) or not isinstance(b, (int, float)):
            return None
        try:
            op = type(node.op)
            if op is ast.Add:
                return a + b
            if op is ast.Sub:
                return a - b
            if op is ast.Mult:
                return a * b
            if op is ast.Div:
                return a / b
            if op is ast.FloorDiv:
                return a // b
            if op is ast.Mod:
                return a % b
            if op is ast.Pow and abs(b) <= 64 and abs(a) < 1e6:
                return a ** b
            if op is ast.LShift and 0 <= b <= 64:
                return a << b
        except (ZeroDivisionError, OverflowError, TypeError, ValueError):
            return None
    return None


def _canon(node: ast.AST | None, script: _Script | None = None, blind: bool = True, depth: int = 0,
           compute: bool = False) -> str:
    """A compact structural form of an expression: names blinded to `_` (renames compare equal), clock and
    sync calls named, and (with compute=True) calls into model code collapsed to `C()`."""
    if node is None:
        return ""
    if depth > 40:
        return "…"
    d = depth + 1
    if isinstance(node, ast.Name):
        if script is not None and node.id in script.aliases:
            return script.aliases[node.id]
        return "_" if blind else node.id
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return repr(float(value))
        return repr(value)
    if isinstance(node, ast.Attribute):
        if script is not None:
            qual = script.qual(node)
            if qual is not None and qual.split(".")[0] in _KNOWN_MODULES:
                return qual
        return f"{_canon(node.value, script, blind, d, compute)}.{node.attr}"
    if isinstance(node, ast.Call):
        qual = script.qual(node.func) if script is not None else None
        if qual in _CLOCKS:
            return "CLOCK()"
        if compute and script is not None and _call_class(script, node) == "compute":
            return "C()"
        if compute and script is not None and script.function_named(node.func) is not None:
            return "U()"
        args = [_canon(a, script, blind, d, compute) for a in node.args]
        args += [f"{k.arg}={_canon(k.value, script, blind, d, compute)}" for k in node.keywords]
        return f"{_canon(node.func, script, blind, d, compute)}({','.join(args)})"
    if isinstance(node, ast.BinOp):
        return f"({_canon(node.left, script, blind, d, compute)}{type(node.op).__name__}" \
               f"{_canon(node.right, script, blind, d, compute)})"
    if isinstance(node, ast.UnaryOp):
        return f"{type(node.op).__name__}({_canon(node.operand, script, blind, d, compute)})"
    if isinstance(node, ast.Subscript):
        return f"{_canon(node.value, script, blind, d, compute)}[{_canon(node.slice, script, blind, d, compute)}]"
    if isinstance(node, ast.Slice):
        return ":".join(_canon(p, script, blind, d, compute) for p in (node.lower, node.upper, node.step))
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return "(" + ",".join(_canon(e, script, blind, d, compute) for e in node.elts) + ")"
    if isinstance(node, ast.Compare):
        parts = [_canon(node.left, script, blind, d, compute)]
        for op, right in zip(node.ops, node.comparators):
            parts += [type(op).__name__, _canon(right, script, blind, d, compute)]
        return "cmp(" + " ".join(parts) + ")"
    if isinstance(node, ast.BoolOp):
        return type(node.op).__name__ + "(" + ",".join(_canon(v, script, blind, d, compute) for v in node.values) + ")"
    if isinstance(node, ast.IfExp):
        return "ifexp(" + ",".join(_canon(v, script, blind, d, compute) for v in (node.test, node.body, node.orelse)) + ")"
    if isinstance(node, ast.JoinedStr):
        return "f" + "".join(_canon(v, script, blind, d, compute) for v in node.values)
    if isinstance(node, ast.FormattedValue):
        return "{" + _canon(node.value, script, blind, d, compute) + "}"
    if isinstance(node, ast.Starred):
        return "*" + _canon(node.value, script, blind, d, compute)
    return type(node).__name__


_KNOWN_MODULES = frozenset({"torch", "time", "os", "sys", "numpy", "math", "subprocess", "socket", "shutil", "glob",
                            "pathlib", "json", "pickle", "random", "statistics", "builtins"})


def _call_class(script: _Script, call: ast.Call) -> str:
    """How the score analysis treats a call: bend | source | carry | compute."""
    qual = script.qual(call.func) or ""
    method = call.func.attr if isinstance(call.func, ast.Attribute) else ""
    if qual in _BENDING_CALLS or (method in _BENDING_METHODS and qual not in _CARRYING_CALLS):
        return "bend"
    if _is_source(qual, method):
        return "source"
    if qual in _CARRYING_CALLS or method in _CARRYING_METHODS:
        return "carry"
    return "compute"


def _is_source(qual: str, method: str) -> bool:
    if qual in ("open", "input", "os.getenv", "os.environ.get", "io.open") or qual in _UNPICKLE:
        return True
    if qual.startswith(("json.", "os.environ", "pathlib.", "urllib", "requests", "socket", "subprocess")):
        return True
    return method in ("read", "read_text", "read_bytes", "readline", "readlines", "getenv", "loads", "load")


# ==================================================================================================== templates

_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(?:\d+|\*)?(?:\.\d+)?[hlL]?([diouxXeEfFgGcrsa%])")
_KEY_BEFORE = re.compile(r"([A-Za-z_][\w]*):$")


def _template(script: _Script, node: ast.AST) -> _Template | None:
    parent = getattr(node, "_p", None)
    if isinstance(node, ast.JoinedStr):
        if isinstance(parent, (ast.JoinedStr, ast.FormattedValue)) or _in_concat(node):
            return None
        return _from_parts(node, _fstring_parts(node))
    if isinstance(node, ast.BinOp):
        if isinstance(node.op, ast.Mod) and isinstance(node.left, ast.Constant) and isinstance(node.left.value, str):
            if not _has_keys(node.left.value):
                return None
            values = node.right.elts if isinstance(node.right, ast.Tuple) else [node.right]
            return _from_parts(node, _percent_parts(node.left.value, values))
        if isinstance(node.op, ast.Add) and not _in_concat(node):
            parts = _concat_parts(node)
            if parts is not None:
                return _from_parts(node, parts)
    return None


def _literal_templates(script: _Script) -> list[_Template]:
    """Plain string constants holding a val line (no placeholders), docstrings and f-string parts excluded."""
    out = []
    for const in script.strings:
        value = const.value
        if "val_loss" not in value and "tel:" not in value:
            continue
        parent = getattr(const, "_p", None)
        if isinstance(parent, (ast.Expr, ast.JoinedStr)) or _in_concat(const):
            continue
        if isinstance(parent, ast.BinOp) and isinstance(parent.op, ast.Mod) and parent.left is const:
            continue
        if isinstance(parent, ast.Attribute) and parent.attr == "format":
            out.append(_from_parts(const, _format_parts(value, getattr(parent, "_p", None))))
            continue
        out.append(_from_parts(const, [(value, None, None)]))
    return [t for t in out if t is not None]


def _has_keys(text: str) -> bool:
    return "val_loss" in text or "train_time:" in text


def _in_concat(node: ast.AST) -> bool:
    parent = getattr(node, "_p", None)
    return isinstance(parent, ast.BinOp) and isinstance(parent.op, ast.Add)


def _fstring_parts(node: ast.JoinedStr) -> list[tuple[str, ast.AST | None, str | None]]:
    parts: list[tuple[str, ast.AST | None, str | None]] = []
    for value in node.values:
        if isinstance(value, ast.Constant):
            parts.append((str(value.value), None, None))
        elif isinstance(value, ast.FormattedValue):
            spec = ""
            if isinstance(value.format_spec, ast.JoinedStr):
                spec = "".join(str(v.value) if isinstance(v, ast.Constant) else "{}" for v in value.format_spec.values)
            spec = (":" + spec) if spec else ""
            if value.conversion and value.conversion > 0:
                spec = "!" + chr(value.conversion) + spec
            parts.append(("", value.value, spec))
    return parts


def _percent_parts(text: str, values: list[ast.AST]) -> list[tuple[str, ast.AST | None, str | None]]:
    parts: list[tuple[str, ast.AST | None, str | None]] = []
    pos, index = 0, 0
    for m in _PERCENT_SPEC.finditer(text):
        parts.append((text[pos:m.start()], None, None))
        if m.group(1) == "%":
            parts.append(("%", None, None))
        else:
            expr = values[index] if index < len(values) else None
            index += 1
            spec = m.group(0)[1:]
            spec = "" if spec in ("s", "d", "i") else ":" + spec
            parts.append(("", expr, spec))
        pos = m.end()
    parts.append((text[pos:], None, None))
    return parts


def _format_parts(text: str, call: ast.AST | None) -> list[tuple[str, ast.AST | None, str | None]]:
    import string

    args = call.args if isinstance(call, ast.Call) else []
    keywords = {k.arg: k.value for k in call.keywords} if isinstance(call, ast.Call) else {}
    parts: list[tuple[str, ast.AST | None, str | None]] = []
    auto = 0
    try:
        pieces = list(string.Formatter().parse(text))
    except ValueError:
        return [(text, None, None)]
    for literal, name, spec, conv in pieces:
        parts.append((literal, None, None))
        if name is None:
            continue
        expr: ast.AST | None = None
        if name == "":
            expr = args[auto] if auto < len(args) else None
            auto += 1
        elif name.isdigit():
            expr = args[int(name)] if int(name) < len(args) else None
        else:
            expr = keywords.get(name.split(".")[0].split("[")[0])
        full = (("!" + conv) if conv else "") + ((":" + spec) if spec else "")
        parts.append(("", expr, full))
    return parts


def _concat_parts(node: ast.BinOp) -> list[tuple[str, ast.AST | None, str | None]] | None:
    """Parts of "a" + str(x) + f"..." chains that hold parser keys, else None."""
    items: list[ast.AST] = []
    stack: list[ast.AST] = [node]
    while stack and len(items) < 200:
        current = stack.pop()
        if isinstance(current, ast.BinOp) and isinstance(current.op, ast.Add):
            stack.append(current.right)
            stack.append(current.left)
        else:
            items.append(current)
    parts: list[tuple[str, ast.AST | None, str | None]] = []
    for item in items:
        if isinstance(item, ast.Constant) and isinstance(item.value, str):
            parts.append((item.value, None, None))
        elif isinstance(item, ast.JoinedStr):
            parts.extend(_fstring_parts(item))
        else:
            expr = item
            if isinstance(item, ast.Call) and isinstance(item.func, ast.Name) and item.func.id in ("str", "format") \
                    and item.args:
                expr = item.args[0]
            parts.append(("", expr, ""))
    text = "".join(p[0] for p in parts)
    return parts if _has_keys(text) else None


def _from_parts(node: ast.AST, parts: list[tuple[str, ast.AST | None, str | None]]) -> _Template | None:
    text, skeleton = "", ""
    fields: list[tuple[str, ast.AST | None, str]] = []
    literal = True
    for chunk, expr, spec in parts:
        if spec is None:
            text += chunk
            skeleton += chunk
            continue
        literal = False
        m = _KEY_BEFORE.search(text)
        key = m.group(1) if m else ""
        if text.endswith("/") and fields and fields[-1][0] == "step":
            key = "step/"
        fields.append((key, expr, spec))
        text += "{}"
        skeleton += "{" + spec + "}"
    if not _has_keys(text) and "tel:" not in text:
        return None
    return _Template(node, getattr(node, "lineno", 0), text, skeleton.strip(), fields, literal)


def _is_val(t: _Template) -> bool:
    return "val_loss" in t.text or "tel:" in t.text


def _is_train(t: _Template) -> bool:
    return not _is_val(t) and "train_time:" in t.text and "step" in t.text


# ==================================================================================================== the score


@dataclass(eq=False)
class _Item:
    """One expression that feeds the printed val loss: the printed field, a binding of a carrier name, or a
    return value of a function the score comes from."""

    node: ast.AST  # for the line number
    value: ast.AST | None
    scope: ast.AST
    kind: str  # field | return | a _Def kind
    op: str
    name: str | None  # the carrier name this item binds
    role: str  # carrier | divisor | divisor_def
    children: list["_Item"] = field(default_factory=list)
    compute: bool = False  # the value comes out of a model/loss computation
    features: list[tuple[str, ast.AST]] = field(default_factory=list)
    canon: str = ""


@dataclass
class _Score:
    items: list[_Item]
    compute_calls: list[tuple[ast.Call, ast.AST]]  # (call, scope) that produce the score
    carriers: set[str]
    loops: list[ast.AST]  # the loops that accumulate the score (the validation loop)


def _parts(script: _Script, expr: ast.AST | None, ctx0: str = "") -> Iterator[tuple[str, ast.AST, str]]:
    """The value-position pieces of an expression, as (tag, node, context: the operator around it)."""
    if expr is None:
        return
    stack: list[tuple[ast.AST, str]] = [(expr, ctx0)]
    seen = 0
    while stack and seen < 400:
        node, ctx = stack.pop()
        seen += 1
        if isinstance(node, ast.Name):
            yield "name", node, ctx
        elif isinstance(node, ast.Constant):
            if _number(node) is not None:
                yield "const", node, ctx
            elif isinstance(node.value, str) and _looks_numeric(node.value):
                yield "const", node, ctx
        elif isinstance(node, ast.Attribute):
            if _root_name(node) in script.aliases:
                yield "module_attr", node, ctx
            elif "." + node.attr in script.attr_defs:
                yield "attr", node, ctx
            else:
                stack.append((node.value, ctx))
        elif isinstance(node, ast.Subscript):
            stack.append((node.value, ctx))
        elif isinstance(node, ast.BinOp):
            op = type(node.op).__name__
            if op in ("Div", "FloorDiv", "Mod"):
                stack.append((node.left, op))
                yield "divisor", node.right, op
            else:
                stack.append((node.right, op))
                stack.append((node.left, op))
        elif isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.Not):
                yield "cond", node, ctx
            stack.append((node.operand, type(node.op).__name__))
        elif isinstance(node, (ast.IfExp, ast.BoolOp, ast.Compare)):
            yield "cond", node, ctx
            children = [node.body, node.orelse] if isinstance(node, ast.IfExp) else \
                node.values if isinstance(node, ast.BoolOp) else [node.left, *node.comparators]
            stack.extend((c, ctx) for c in children)
        elif isinstance(node, ast.Call):
            yield from _call_parts(script, node, ctx, stack)
        elif isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            stack.extend((e, ctx) for e in node.elts)
        elif isinstance(node, ast.Starred):
            stack.append((node.value, ctx))
        elif isinstance(node, (ast.ListComp, ast.GeneratorExp, ast.SetComp)):
            stack.append((node.elt, ctx))
            stack.extend((g.iter, ctx) for g in node.generators)
        elif isinstance(node, ast.NamedExpr):
            stack.append((node.value, ctx))
        else:
            yield "other", node, ctx


def _looks_numeric(text: str) -> bool:
    try:
        float(text.strip())
    except ValueError:
        return False
    return bool(text.strip())


def _call_parts(script: _Script, node: ast.Call, ctx: str,
                stack: list[tuple[ast.AST, str]]) -> Iterator[tuple[str, ast.AST, str]]:
    cls = _call_class(script, node)
    func = node.func
    receiver = func.value if isinstance(func, ast.Attribute) else None
    if cls == "bend":
        yield "bend", node, ctx
        stack.extend((a, ctx) for a in node.args)
        if receiver is not None:
            stack.append((receiver, ctx))
        return
    if cls == "source":
        yield "source", node, ctx
        return
    function = script.function_named(func)
    if function is not None and cls != "carry":
        yield "user", node, ctx
        return
    if cls == "carry":
        method = func.attr if isinstance(func, ast.Attribute) else ""
        if method in ("div", "div_"):
            for a in node.args:
                yield "divisor", a, "Div"
        elif method not in ("to", "view", "reshape", "flatten", "squeeze", "unsqueeze", "cuda"):
            stack.extend((a, "Mult" if method in ("mul", "mul_") else ctx) for a in node.args)
        if receiver is not None:
            stack.append((receiver, ctx))
        return
    if (script.qual(func) or "") in _ZERO_INIT:
        yield "init", node, ctx
        return
    yield "compute", node, ctx


def _score(script: _Script, templates: list[_Template]) -> _Score:
    """Everything the printed val loss is computed from, followed through names, attributes and the module's
    own functions (divisors only one binding deep)."""
    items: list[_Item] = []
    by_key: dict[tuple[int, str], _Item] = {}
    compute_calls: list[tuple[ast.Call, ast.AST]] = []
    carriers: set[str] = set()
    queue: list[_Item] = []
    for t in templates:
        expr = t.field("val_loss")
        if expr is None:
            continue
        item = _Item(t.node, expr, script.scope_of(t.node), "field", "", None, "carrier")
        items.append(item)
        queue.append(item)

    def reach(key: tuple[int, str], make: Any) -> _Item | None:
        if key in by_key:
            return by_key[key]
        if len(items) >= 300:
            return None
        new = make()
        by_key[key] = new
        items.append(new)
        queue.append(new)
        return new

    while queue:
        item = queue.pop()
        child_role = "divisor_def" if item.role in ("divisor", "divisor_def") else "carrier"
        if item.role == "carrier" and item.kind == "aug" and item.op in ("Div", "FloorDiv", "Mod"):
            value = item.value  # x /= n: n is a divisor
            child = reach((id(value), "divisor"),
                          lambda v=value, i=item: _Item(v, v, i.scope, "divisor", "", None, "divisor"))
            if child is not None:
                item.children.append(child)
            continue
        for tag, node, ctx in _parts(script, item.value, item.op if item.kind == "aug" else ""):
            if tag == "compute":
                item.compute = True
                if item.role == "carrier":
                    compute_calls.append((node, item.scope))
                continue
            if tag == "divisor" and item.role == "carrier":
                child = reach((id(node), "divisor"),
                              lambda n=node, i=item: _Item(n, n, i.scope, "divisor", "", None, "divisor"))
                if child is not None:
                    item.children.append(child)
                continue
            if item.role == "divisor_def" and tag in ("name", "attr", "user"):
                continue  # a divisor is followed one binding deep only
            if tag == "name":
                defs = script.reaching(node.id, item.scope, getattr(node, "lineno", 0), node)
                if item.role == "carrier":
                    carriers.add(node.id)
                for d in defs:
                    for child in _def_items(script, d, child_role, reach):
                        item.children.append(child)
            elif tag == "attr":
                for d in script.attr_defs.get("." + node.attr, []):
                    for child in _def_items(script, d, child_role, reach):
                        item.children.append(child)
            elif tag == "user":
                function = script.function_named(node.func)
                for ret in script.returns.get(id(function), []):
                    child = reach((id(ret), child_role), lambda r=ret, f=function: _Item(
                        r, r.value, f, "return", "", None, child_role))
                    if child is not None:
                        item.children.append(child)
    _ground(items)
    loops = []
    for item in items:
        if item.role == "carrier" and item.kind in ("aug", "mutate", "item"):
            loop = _innermost_loop(item.node, item.scope)
            if loop is not None and loop not in loops:
                loops.append(loop)
    return _Score(items, compute_calls, carriers, loops)


def _def_items(script: _Script, d: _Def, role: str, reach: Any) -> list[_Item]:
    if d.kind == "param":
        if role != "carrier":
            return []
        out = []
        function = d.scope
        for call in script.calls_to(function)[:8]:
            arg = _argument_for(function, call, d.name)
            if arg is not None:
                item = reach((id(arg), role), lambda a=arg, c=call: _Item(
                    a, a, script.scope_of(c), "arg", "", None, role))
                if item is not None:
                    out.append(item)
        return out
    if d.kind in ("def",):
        return []
    item = reach((id(d), role), lambda: _Item(d.node, d.value, d.scope, d.kind, d.op, d.name, role))
    return [item] if item is not None else []


def _argument_for(function: ast.AST, call: ast.Call, name: str) -> ast.AST | None:
    args = getattr(function, "args", None)
    if args is None:
        return None
    positional = [a.arg for a in [*args.posonlyargs, *args.args]]
    if positional and positional[0] in ("self", "cls") and isinstance(call.func, ast.Attribute):
        positional = positional[1:]
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value
    if name in positional:
        index = positional.index(name)
        for i, arg in enumerate(call.args):
            if isinstance(arg, ast.Starred):
                return arg.value  # f(*batch): the parameter is one of its items
            if i == index:
                return arg
    for kw in call.keywords:
        if kw.arg is None:
            return kw.value  # f(**options)
    return None


def _ground(items: list[_Item]) -> None:
    changed = True
    rounds = 0
    while changed and rounds < 50:
        changed = False
        rounds += 1
        for item in items:
            if not item.compute and any(c.compute for c in item.children if c.role == "carrier"):
                item.compute = True
                changed = True


def _innermost_loop(node: ast.AST, scope: ast.AST) -> ast.AST | None:
    for parent in _parents(node):
        if parent is scope:
            return None
        if isinstance(parent, (ast.For, ast.AsyncFor, ast.While)):
            return parent
    return None


_ZERO_VALUES = (0, 0.0)


def _is_init(script: _Script, value: ast.AST | None) -> bool:
    """A fresh accumulator: 0, 0.0, [], {}, torch.zeros(...), torch.tensor(0.0)..."""
    if value is None:
        return True
    if isinstance(value, (ast.List, ast.Tuple, ast.Dict, ast.Set)) and not getattr(value, "elts", getattr(value, "keys", [])):
        return True
    number = _const_eval(value)
    if isinstance(number, (int, float)) and number in _ZERO_VALUES:
        return True
    if isinstance(value, (ast.Tuple, ast.List)):
        return all(_is_init(script, e) for e in value.elts)
    if isinstance(value, ast.Call):
        qual = script.qual(value.func) or ""
        if qual in ("torch.zeros", "torch.zeros_like", "numpy.zeros", "numpy.zeros_like", "torch.empty", "list", "dict"):
            return True
        if qual in ("torch.tensor", "torch.as_tensor", "float", "int", "numpy.float64") and value.args:
            return _is_init(script, value.args[0])
    return False


def _features(script: _Script, score: _Score) -> None:
    """What bends the score, per item (only items the base does not have are held against a candidate)."""
    carriers = score.carriers
    for item in score.items:
        item.canon = _item_canon(script, item)
        feats = item.features
        if item.role == "carrier":
            self_ref = item.kind in ("aug", "mutate", "collective", "item")
            op = item.op if item.kind == "aug" else ""
            for tag, node, ctx in ([] if op in ("Div", "FloorDiv", "Mod") else _parts(script, item.value, op)):
                if tag == "const" and _bending_constant(node, ctx):
                    feats.append((f"const:{_show(node)}", node))
                elif tag == "bend":
                    feats.append((f"bend:{_call_name(script, node)}", node))
                elif tag == "source":
                    feats.append((f"source:{_call_name(script, node)}", node))
                elif tag == "cond":
                    feats.append(("cond", node))
                elif tag == "compute" and not _has_names(script, node):
                    feats.append(("const_call", node))
                elif tag == "module_attr":
                    feats.append((f"module:{script.qual(node)}", node))
                elif tag == "name":
                    if node.id == item.name:
                        self_ref = True
                    defs = script.defs_of(node.id, item.scope)
                    if any(d.kind == "import" for d in defs):
                        feats.append((f"imported:{node.id}", node))
            if item.kind == "collective":
                op = _reduce_op(item.value)
                if op and op not in ("AVG", "SUM"):
                    feats.append((f"reduce:{op}", item.node))
            if item.kind == "mutate" and item.op in _BENDING_METHODS:
                feats.append((f"bend:{item.op}", item.node))
            if item.kind in ("assign", "ann", "walrus", "for", "with", "return", "arg", "field") and not item.compute \
                    and not self_ref and not _is_init(script, item.value):
                feats.append(("ungrounded", item.node))
            if item.kind not in ("field", "return", "arg") and _guarded_by(item.node, item.scope, carriers):
                feats.append(("cond_guard", item.node))
        else:
            for tag, node, ctx in _parts(script, item.value):
                if tag == "const" and _bending_constant(node, "Div"):
                    feats.append((f"const:{_show(node)}", node))
                elif tag in ("bend", "source"):
                    feats.append((f"{tag}:{_call_name(script, node)}", node))


_NEUTRAL_METHODS = frozenset({"item", "detach", "cpu", "cuda", "float", "double", "half", "bfloat16", "tolist",
                              "clone", "to", "view", "reshape", "squeeze", "unsqueeze", "numpy", "flatten",
                              "contiguous", "__float__"})


def _item_canon(script: _Script, item: _Item) -> str:
    """How an item compares with the base's: renames, a fresh accumulator's spelling (0 / 0.0 / zeros()),
    reduce vs all_reduce and dtype/device moves do not count as changes."""
    if item.kind == "collective":
        return f"{item.role}|collective|{_reduce_op(item.value) or ''}"
    if item.kind in ("assign", "ann") and _is_init(script, item.value):
        return f"{item.role}|{item.kind}|INIT"
    value = item.value
    while isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and value.func.attr in _NEUTRAL_METHODS:
        value = value.func.value
    if item.kind == "aug" and isinstance(value, ast.Call) and script.qual(value.func) in ("float", "int"):
        value = value.args[0] if value.args else value
    return f"{item.role}|{item.kind}|{item.op}|{_canon(value, script, compute=True)}"


def _bending_constant(node: ast.AST, ctx: str) -> bool:
    value = _number(node)
    if value is None:
        return isinstance(node, ast.Constant)  # a number written as a string
    if value == 0:
        return False
    if value == 1 and ctx in ("Mult", "Div", "FloorDiv", "Pow", ""):
        return False
    return True


def _show(node: ast.AST) -> str:
    return repr(node.value) if isinstance(node, ast.Constant) else type(node).__name__


def _call_name(script: _Script, node: ast.Call) -> str:
    qual = script.qual(node.func)
    if qual:
        return qual
    return node.func.attr if isinstance(node.func, ast.Attribute) else "call"


def _has_names(script: _Script, call: ast.Call) -> bool:
    """Whether a call takes anything but constants (a receiver object or a name in its arguments)."""
    pieces = [*call.args, *(k.value for k in call.keywords)]
    if any(isinstance(n, (ast.Name, ast.Attribute)) for p in pieces for n in _walk(p, 200)):
        return True
    func = call.func
    return isinstance(func, ast.Attribute) and _root_name(func.value) not in script.aliases


def _reduce_op(call: ast.AST | None) -> str | None:
    if not isinstance(call, ast.Call):
        return None
    for node in [*call.args[1:], *(k.value for k in call.keywords)]:
        if isinstance(node, ast.Attribute) and node.attr.isupper():
            return node.attr
    return None


def _guarded_by(node: ast.AST, scope: ast.AST, names: set[str]) -> bool:
    """Whether an If/While test between `node` and its scope mentions one of `names`."""
    child = node
    for parent in _parents(node):
        if parent is scope:
            return False
        if isinstance(parent, (ast.If, ast.While)) and child is not parent.test:
            for n in _walk(parent.test, 300):
                if isinstance(n, ast.Name) and n.id in names:
                    return True
        if isinstance(parent, ast.IfExp):
            return True
        child = parent
    return False


# ==================================================================================================== provenance


def _provenance(script: _Script, roots: Iterable[tuple[ast.AST, ast.AST, int]], budget: int = 250) -> set[str]:
    """The data-file strings an expression is built from (through the bindings that reach it). A function
    entered through a call is read with that call's arguments for its parameters (a call stack is kept);
    a parameter of any other function stands for all its callers' arguments."""
    found: set[str] = set()
    seen: set[tuple[int, tuple[int, ...]]] = set()
    Stack = tuple[ast.Call, ...]
    stack: list[tuple[ast.AST, ast.AST, int, Stack]] = [(e, s, l, ()) for e, s, l in roots]
    while stack and budget > 0:
        expr, scope, line, calls = stack.pop()
        budget -= 1
        ids = tuple(id(c) for c in calls)
        for node in _data_walk(script, expr):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if _DATA_STRING.search(node.value):
                    found.add(_basename(node.value))
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                if node.id in script.aliases or node.id in _BUILTIN_NAMES:
                    continue  # a module or a builtin carries no data
                for d in script.reaching(node.id, scope, line, node):
                    if (id(d), ids) in seen:
                        continue
                    seen.add((id(d), ids))
                    if d.value is not None:
                        stack.append((d.value, d.scope, d.line, calls if d.scope is scope else ()))
                    elif d.kind == "param":
                        entered = calls and d.scope is scope and script.function_named(calls[-1].func) is d.scope
                        callers = [calls[-1]] if entered else script.calls_to(d.scope)[:6]
                        outer = calls[:-1] if entered else ()
                        for call in callers:
                            arg = _argument_for(d.scope, call, d.name)
                            if arg is not None:
                                stack.append((arg, script.scope_of(call), call.lineno, outer))
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
                for d in script.attr_defs.get("." + node.attr, [])[:6]:
                    if (id(d), ()) not in seen and d.value is not None:
                        seen.add((id(d), ()))
                        stack.append((d.value, d.scope, d.line, ()))
            elif isinstance(node, ast.Call):
                function = script.function_named(node.func)
                if function is not None and (id(node), ids) not in seen and len(calls) < 8:
                    seen.add((id(node), ids))
                    for ret in script.returns.get(id(function), [])[:6]:
                        if ret.value is not None:
                            stack.append((ret.value, function, ret.lineno, (*calls, node)))
    return found


_BUILTIN_NAMES = frozenset({"len", "range", "int", "float", "str", "bool", "list", "tuple", "dict", "set", "min",
                            "max", "sum", "zip", "enumerate", "sorted", "reversed", "print", "isinstance", "next",
                            "iter", "abs", "round", "any", "all", "map", "filter", "getattr", "hasattr", "self",
                            "None", "True", "False", "super", "type", "object"})


def _data_walk(script: _Script, expr: ast.AST, limit: int = 250) -> Iterator[ast.AST]:
    """The nodes of an expression that data can flow through: a call's arguments and receiver, not the name
    of the function called (model(x) carries x, not the model's construction); an attribute with bindings of its
    own (args.val_files) is not followed into its object."""
    stack = [expr]
    count = 0
    while stack and count < limit:
        node = stack.pop()
        count += 1
        yield node
        kind = type(node)
        if kind is ast.Call:
            func = node.func
            stack.extend(node.args)
            stack.extend(k.value for k in node.keywords)
            if type(func) is ast.Attribute:
                stack.append(func.value)
            elif type(func) is not ast.Name:
                stack.append(func)
        elif kind is ast.Attribute:
            if "." + node.attr not in script.attr_defs:
                stack.append(node.value)
        elif kind in (ast.Lambda, ast.FunctionDef):
            continue
        else:
            for name in _child_fields(kind):
                value = getattr(node, name, None)
                if type(value) is list:
                    stack.extend(c for c in value if isinstance(c, ast.AST))
                elif isinstance(value, ast.AST):
                    stack.append(value)


def _basename(path: str) -> str:
    return path.replace("\\", "/").rsplit("/", 1)[-1]


def _compute_roots(script: _Script, calls: list[tuple[ast.Call, ast.AST]]) -> list[tuple[ast.AST, ast.AST, int]]:
    roots = []
    for call, scope in calls[:40]:
        for arg in [*call.args, *(k.value for k in call.keywords)]:
            roots.append((arg, scope, call.lineno))
        if isinstance(call.func, ast.Attribute):
            roots.append((call.func.value, scope, call.lineno))
    return roots


# ==================================================================================================== the loop


@dataclass
class _Loop:
    """The training loop and the clock that times it."""

    node: ast.AST | None
    step_var: str | None
    timer: str | None  # the train_time variable printed on the val line
    clock_vars: set[str]
    accums: list[_Def]  # timer += 1000 * (clock() - t0)
    timer_defs: list[_Def]
    clock_defs: list[_Def]
    last_names: set[str]


def _has_clock(script: _Script, expr: ast.AST | None) -> bool:
    return expr is not None and any(isinstance(n, ast.Call) and script.qual(n.func) in _CLOCKS
                                    for n in _walk(expr, 300))


def _clock_vars(script: _Script, expr: ast.AST | None) -> set[str]:
    out = set()
    for n in _walk(expr, 300) if expr is not None else ():
        if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Sub) and isinstance(n.left, ast.Call) \
                and script.qual(n.left.func) in _CLOCKS and isinstance(n.right, ast.Name):
            out.add(n.right.id)
    return out


def _anchors(script: _Script, node: ast.AST, depth: int = 0) -> list[ast.AST]:
    """The module-level nodes that run `node`: itself, or the calls of the function that holds it."""
    scope = script.scope_of(node)
    if scope is script.tree or depth > 3 or not isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return [node]
    out: list[ast.AST] = []
    for call in script.calls_to(scope)[:8]:
        if _inside(call, scope):
            continue
        out.extend(_anchors(script, call, depth + 1))
    return out or [node]


def _field_name(script: _Script, t: _Template, key: str) -> str | None:
    """The variable a field of a log line prints, seen from the caller when it is a parameter of a helper."""
    expr = t.field(key)
    for _ in range(3):
        if not isinstance(expr, ast.Name):
            return None
        scope = script.scope_of(expr)
        params = [d for d in script.defs.get((id(scope), expr.id), []) if d.kind == "param"]
        if scope is script.tree or not params:
            return expr.id
        calls = [c for c in script.calls_to(scope) if not _inside(c, scope)]
        if not calls:
            return expr.id
        expr = _argument_for(scope, calls[0], expr.id)
    return None


def _loop(script: _Script, val_templates: list[_Template]) -> _Loop:
    names = Counter(n for t in val_templates if (n := _field_name(script, t, "train_time")))
    timer = names.most_common(1)[0][0] if names else None
    timer_defs = list(script.defs_by_name.get(timer, [])) if timer else []
    accums = [d for d in timer_defs if d.kind == "aug" and d.op == "Add" and _has_clock(script, d.value)]
    clock_vars: set[str] = set()
    for d in accums:
        clock_vars |= _clock_vars(script, d.value)
    loops = Counter()
    for d in accums:
        loop = _innermost_loop(d.node, script.tree if d.scope is script.tree else d.scope)
        if loop is not None:
            loops[loop] += 1
    node = loops.most_common(1)[0][0] if loops else None
    if node is None:  # no clock: the loop that runs the val line (around its callers, else around it)
        for t in val_templates:
            for anchor in [*_anchors(script, t.node), t.node]:
                node = node or _outermost_loop(anchor)
    step_var = node.target.id if isinstance(node, (ast.For, ast.AsyncFor)) and isinstance(node.target, ast.Name) else None
    clock_defs = [d for name in clock_vars for d in script.defs_by_name.get(name, [])]
    last_names: set[str] = set()
    if node is not None and step_var:
        for n in _shallow_statements(node):
            if isinstance(n, ast.Assign) and isinstance(n.value, ast.Compare) and len(n.targets) == 1 \
                    and isinstance(n.targets[0], ast.Name) and _mentions(n.value, {step_var}):
                if any(isinstance(op, (ast.Eq, ast.GtE)) for op in n.value.ops):
                    last_names.add(n.targets[0].id)
    return _Loop(node, step_var, timer, clock_vars, accums, timer_defs, clock_defs, last_names)


def _shallow_statements(loop: ast.AST) -> Iterator[ast.AST]:
    """The statements of a loop's body, and of the if/with blocks directly in it."""
    for stmt in getattr(loop, "body", []):
        yield stmt
        if isinstance(stmt, (ast.If, ast.With, ast.AsyncWith)):
            yield from stmt.body
            yield from getattr(stmt, "orelse", [])


def _outermost_loop(node: ast.AST) -> ast.AST | None:
    found = None
    for parent in _parents(node):
        if isinstance(parent, (ast.FunctionDef, ast.AsyncFunctionDef)):
            break
        if isinstance(parent, (ast.For, ast.AsyncFor, ast.While)):
            found = parent
    return found


def _mentions(expr: ast.AST, names: set[str]) -> bool:
    return any(isinstance(n, ast.Name) and n.id in names for n in _walk(expr, 300))


# ==================================================================================================== facts


@dataclass(eq=False)
class _Facts:
    """Everything the checks compare, for one script (cached per text)."""

    script: _Script
    val: list[_Template]
    literal_val: list[_Template]
    train: list[_Template]
    score: _Score
    val_data: set[str]
    train_data: set[str]
    loop: _Loop
    memo: dict[str, Any] = field(default_factory=dict)

    @property
    def code_lines(self) -> frozenset[str]:
        lines = self.memo.get("code_lines")
        if lines is None:
            lines = frozenset(" ".join(line.split()) for line in self.script.lines)
            self.memo["code_lines"] = lines
        return lines


def _memo(fn: Any) -> Any:
    """Cache a per-script derivation on the facts object (the base's are computed once per record)."""
    name = "_memo_" + fn.__name__

    def wrapper(facts: "_Facts") -> Any:
        cache = facts.memo
        if name not in cache:
            cache[name] = fn(facts)
        return cache[name]

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


@lru_cache(maxsize=8)
def _facts(text: str) -> _Facts:
    script = _Script(text)
    templates = script.templates
    val = [t for t in templates if _is_val(t) and not t.literal]
    literal_val = [t for t in templates if _is_val(t) and t.literal] + _literal_templates(script)
    train = [t for t in templates if _is_train(t)]
    score = _score(script, val)
    _features(script, score)
    val_data = _provenance(script, _compute_roots(script, score.compute_calls))
    loop = _loop(script, val)
    train_data = _provenance(script, _backward_roots(script, loop.node)) if loop.node is not None else set()
    return _Facts(script, val, literal_val, train, score, val_data, train_data, loop)


def _backward_roots(script: _Script, loop: ast.AST) -> list[tuple[ast.AST, ast.AST, int]]:
    roots = []
    for call in script.calls_named("backward"):
        func = call.func
        if isinstance(func, ast.Attribute) and any(_inside(a, loop) for a in [call, *_anchors(script, call)]):
            roots.append((func.value, script.scope_of(call), call.lineno))
    return roots[:20]


@dataclass
class _Hit:
    """A keyed occurrence of something a candidate may not add (compared as a multiset with the base)."""

    key: str
    node: ast.AST | int  # 0 when the hit has no line (an import alias)
    rule: str
    reason: str
    severity: str = BLOCK


def _extra(base: list[_Hit], new: list[_Hit], new_facts: _Facts, base_facts: _Facts) -> list[_Hit]:
    """The hits of `new` beyond the base's count per key, preferring those on lines the base does not have."""
    have = Counter(h.key for h in base)
    out = []
    by_key: dict[str, list[_Hit]] = {}
    for hit in new:
        by_key.setdefault(hit.key, []).append(hit)
    for key, hits in by_key.items():
        surplus = len(hits) - have.get(key, 0)
        if surplus <= 0:
            continue
        norm = lambda h: " ".join(new_facts.script.line_text(getattr(h.node, "lineno", 0)).split())  # noqa: E731
        hits = sorted(hits, key=lambda h: (norm(h) in base_facts.code_lines, getattr(h.node, "lineno", 0)))
        out.extend(hits[:surplus])
    return out


def _hit_findings(hits: list[_Hit], facts: _Facts, where: str = "new") -> list[Finding]:
    return [_rule(h.rule, h.severity, facts.script, h.node, where, h.reason) for h in hits]


# ==================================================================================================== checks: score


_FEATURE_TEXT = {
    "cond": "a condition decides the printed val loss",
    "cond_guard": "the val loss is changed under a condition on its own value",
    "const_call": "the val loss comes from a call on constants only",
    "ungrounded": "the printed val loss is not computed by the validation routine",
}


def _feature_reason(feature: str) -> str:
    head, _, detail = feature.partition(":")
    if head == "const":
        return f"the constant {detail} enters the printed val loss"
    if head == "bend":
        return f"the printed val loss passes through {detail}()"
    if head == "source":
        return f"the val loss is read from {detail}(), not computed"
    if head == "reduce":
        return f"the val loss is reduced across ranks with {detail}"
    if head == "imported":
        return f"the val loss is set from the imported name {detail}"
    if head == "module":
        return f"the val loss is set from {detail}"
    return _FEATURE_TEXT.get(head, f"the printed val loss is bent ({feature})")


def _check_score(base: _Facts, new: _Facts) -> list[Finding]:
    findings: list[Finding] = []
    if not new.val:
        return findings
    have = Counter(item.canon for item in base.score.items)
    changed = []
    for item in sorted(new.score.items, key=lambda i: getattr(i.node, "lineno", 0)):
        if have.get(item.canon, 0) > 0:
            have[item.canon] -= 1
        else:
            changed.append(item)
    # A base whose score comes out of no call at all (a synthetic fixture: loss *= DECAY) computes it from its
    # constants; there a changed constant deeper than the printed field is the "training", not tampering.
    base_computed = any(i.compute for i in base.score.items if i.role == "carrier" and i.kind != "field")
    for item in changed:
        features = item.features
        if not base_computed and item.kind != "field":
            features = [(f, n) for f, n in features if not f.startswith(("const:", "ungrounded", "const_call"))]
        if features and len(findings) < 4:
            feature, node = features[0]
            findings.append(_rule("val_loss.tampered", BLOCK, new.script, node, "new", _feature_reason(feature)))
    changed_carriers = [i for i in changed if i.role == "carrier" and (base_computed or i.kind == "field")]
    if not findings and changed_carriers:
        first = changed_carriers[0].node
        if first is not None:
            findings.append(_rule("validation.refactored", NOTE, new.script, first, "new",
                                  "the code that computes the val loss changed shape; no bending found"))
    if base.val_data and new.val_data != base.val_data:
        added = sorted(new.val_data - base.val_data)
        if not new.val_data:
            reason = "the val loss can no longer be traced to the validation data " + _names(base.val_data)
        elif any("train" in p.lower() for p in added):
            reason = f"the val loss is computed on training data ({', '.join(added)})"
        else:
            reason = f"the val loss is computed on {_names(new.val_data)} instead of {_names(base.val_data)}"
        findings.append(_rule("data.val_source_changed", BLOCK, new.script, new.val[0].node, "new", reason))
    return findings


def _names(items: Iterable[str]) -> str:
    return ", ".join(sorted(items)) or "nothing"


# ==================================================================================================== checks: log lines


def _check_log_format(base: _Facts, new: _Facts) -> list[Finding]:
    findings: list[Finding] = []
    if base.val and not new.val:
        findings.append(_rule("log_format.changed", BLOCK, base.script, base.val[0].node, "base",
                              "the val line (step:… val_loss:… train_time:…) is no longer printed"))
    base_skeletons = {t.skeleton for t in base.val}
    new_skeletons = {t.skeleton for t in new.val}
    still_there = bool(base_skeletons & new_skeletons)
    if base_skeletons:
        for t in new.val:
            if t.skeleton in base_skeletons:
                continue
            if still_there:
                findings.append(_rule("val_loss.fake_print", BLOCK, new.script, t.node, "new",
                                      f"an extra val line is printed: {t.skeleton!r}"))
            else:
                findings.append(_rule("log_format.changed", BLOCK, new.script, t.node, "new",
                                      f"the val line's format changed to {t.skeleton!r}"))
    base_literals = Counter(t.text for t in base.literal_val)
    for t in new.literal_val:
        if base_literals.get(t.text, 0) > 0:
            base_literals[t.text] -= 1
            continue
        findings.append(_rule("val_loss.fake_print", BLOCK, new.script, t.node, "new",
                              "a literal val line (a fixed score) is printed"))
    findings.extend(_field_findings(base, new))
    base_train, new_train = {t.skeleton for t in base.train}, {t.skeleton for t in new.train}
    if base_train and new_train != base_train:
        added = [t for t in new.train if t.skeleton not in base_train]
        node = added[0].node if added else None
        script, where = (new.script, "new") if node is not None else (base.script, "base")
        node = node if node is not None else base.train[0].node
        findings.append(_rule("log_format.train_line_changed", NOTE, script, node, where,
                              "the per-step train line's format changed"))
    return findings


def _field_findings(base: _Facts, new: _Facts) -> list[Finding]:
    findings: list[Finding] = []
    base_time_plain = any(isinstance(t.field("train_time"), ast.Name) for t in base.val)
    base_step_plain = any(_field_name(base.script, t, "step") == base.loop.step_var for t in base.val)
    for t in new.val:
        time_expr, step_expr = t.field("train_time"), t.field("step")
        if base_time_plain and time_expr is not None and not isinstance(time_expr, ast.Name):
            findings.append(_rule("timer.shrunk", BLOCK, new.script, t.node, "new",
                                  f"the printed train_time is {_short(time_expr)}, not the timer"))
        if base_step_plain and step_expr is not None and new.loop.step_var and \
                _field_name(new.script, t, "step") != new.loop.step_var:
            findings.append(_rule("log_format.changed", BLOCK, new.script, t.node, "new",
                                  f"the val line prints step {_short(step_expr)} instead of the loop's step"))
    return findings


def _short(node: ast.AST) -> str:
    try:
        return f"{ast.unparse(node)[:60]}"
    except (ValueError, RecursionError, AttributeError):
        return type(node).__name__


# ==================================================================================================== checks: validation


def _check_validation(base: _Facts, new: _Facts) -> list[Finding]:
    findings: list[Finding] = []
    if base.loop.node is None or not base.val:
        return findings
    base_ok, _, _ = _final_step(base)
    new_ok, node, reason = _final_step(new)
    if base_ok and not new_ok:
        findings.append(_rule("validation.final_step_skipped", BLOCK, new.script, node or 0, "new", reason))
    findings.extend(_hit_findings(_extra(_exits(base), _exits(new), new, base), new))
    return findings


@_memo
def _final_step(facts: _Facts) -> tuple[bool, ast.AST | None, str]:
    script, loop = facts.script, facts.loop
    if loop.node is None:
        node = facts.val[0].node if facts.val else None
        return False, node, "the val line is no longer inside a training loop"
    anchors = [a for t in facts.val for a in _anchors(script, t.node) if _inside(a, loop.node)]
    if not anchors:
        node = facts.val[0].node if facts.val else loop.node
        return False, node, "the val line is no longer printed inside the training loop"
    names = ({loop.step_var} if loop.step_var else set()) | loop.last_names
    chosen = None
    for anchor in anchors:
        if all(_fires(test, positive, names, loop.last_names) in ("yes", "neutral")
               for test, positive in _conditions(anchor, loop.node)):
            chosen = anchor
            break
    if chosen is None:
        test = next((t for t, _ in _conditions(anchors[0], loop.node)), anchors[0])
        return False, test, "the val line's condition no longer holds on the last step"
    top = next((p for p in [chosen, *_parents(chosen)] if getattr(p, "_p", None) is loop.node), None)
    body = getattr(loop.node, "body", [])
    for stmt in body:
        if stmt is top:
            break
        for jump in _jumps_in(stmt):
            conds = _conditions(jump, loop.node)
            if all(_fires(test, positive, names, loop.last_names) in ("yes", "neutral") for test, positive in conds):
                return False, jump, "the loop leaves the last step before it validates"
    if _bound_ok(facts) is False:
        return False, loop.node, "the loop's range never reaches the last-step validation"
    return True, chosen, ""


def _jumps_in(stmt: ast.AST) -> Iterator[ast.AST]:
    stack = [stmt]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Break, ast.Continue)):
            yield node
        for child in ast.iter_child_nodes(node):
            if not isinstance(child, (ast.For, ast.AsyncFor, ast.While, ast.FunctionDef, ast.AsyncFunctionDef,
                                      ast.Lambda, ast.ClassDef)):
                stack.append(child)


def _conditions(node: ast.AST, loop: ast.AST) -> list[tuple[ast.AST, bool]]:
    out = []
    child = node
    for parent in _parents(node):
        if parent is loop:
            break
        if isinstance(parent, ast.If) and child is not parent.test:
            out.append((parent.test, not any(child is s for s in parent.orelse)))
        child = parent
    return out


def _fires(expr: ast.AST, positive: bool, names: set[str], last: set[str]) -> str:
    """Whether a condition holds on the last step: yes | no | neutral (does not depend on the step)."""
    if not _mentions(expr, names):
        return "neutral"
    if isinstance(expr, ast.UnaryOp) and isinstance(expr.op, ast.Not):
        return _fires(expr.operand, not positive, names, last)
    if isinstance(expr, ast.Name):
        return ("yes" if positive else "no") if expr.id in last else "no"
    if isinstance(expr, ast.Compare) and len(expr.ops) == 1:
        op = expr.ops[0]
        if isinstance(op, (ast.Eq, ast.GtE)) and _step_compare(expr, names - last):
            return "yes" if positive else "no"
        if isinstance(op, (ast.NotEq, ast.Lt)) and _step_compare(expr, names - last):
            return "no" if positive else "yes"
        return "no"
    if isinstance(expr, ast.BoolOp):
        results = [_fires(v, positive, names, last) for v in expr.values]
        any_of = isinstance(expr.op, ast.Or) == positive  # Or, or a negated And
        if any_of:
            return "yes" if "yes" in results else ("neutral" if all(r == "neutral" for r in results) else "no")
        if all(r in ("yes", "neutral") for r in results):
            return "yes" if "yes" in results else "neutral"
        return "no"
    return "no"


def _step_compare(expr: ast.Compare, step_names: set[str]) -> bool:
    sides = [expr.left, *expr.comparators]
    return any(isinstance(s, ast.Name) and s.id in step_names for s in sides)


@_memo
def _bound_ok(facts: _Facts) -> bool | None:
    """Whether the loop's range reaches the step the last-step test compares with (range(N + 1) vs step == N)."""
    loop = facts.loop
    node = loop.node
    if not isinstance(node, (ast.For, ast.AsyncFor)) or not isinstance(node.iter, ast.Call) or not loop.step_var:
        return None
    if facts.script.qual(node.iter.func) != "range" or not node.iter.args or len(node.iter.args) > 2:
        return None
    stop = node.iter.args[-1]
    bound = None
    for n in _shallow_statements(node):
        if isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name) \
                and n.targets[0].id in loop.last_names and isinstance(n.value, ast.Compare):
            cmp = n.value
            sides = [cmp.left, *cmp.comparators]
            others = [x for x in sides if not (isinstance(x, ast.Name) and x.id == loop.step_var)]
            if len(others) == 1 and isinstance(cmp.ops[0], ast.Eq):
                bound = others[0]
                break
    if bound is None:
        return None
    stop_value, bound_value = _const_eval(stop), _const_eval(bound)
    if isinstance(stop_value, int) and isinstance(bound_value, int):
        return bound_value <= stop_value - 1
    same = lambda a, b: _canon(a, facts.script, blind=False) == _canon(b, facts.script, blind=False)  # noqa: E731
    if isinstance(stop, ast.BinOp) and isinstance(stop.op, ast.Add) and same(stop.left, bound):
        k = _const_eval(stop.right)
        return isinstance(k, int) and k >= 1 if k is not None else None
    if same(stop, bound) or (isinstance(stop, ast.BinOp) and isinstance(stop.op, ast.Sub) and same(stop.left, bound)):
        return False  # range(N) or range(N - k) never reaches step == N
    return None


@_memo
def _exits(facts: _Facts) -> list[_Hit]:
    """Ways to leave the training loop other than its own last-step break."""
    loop = facts.loop.node
    hits: list[_Hit] = []
    if loop is None:
        return hits
    script = facts.script
    for call in script.calls:
        func = call.func
        name = func.attr if type(func) is ast.Attribute else func.id if type(func) is ast.Name else ""
        if name not in ("exit", "_exit", "quit", "abort"):
            continue
        qual = script.qual(func)
        if qual in _EXITS and _inside(call, loop):
            hits.append(_Hit(f"exit:{qual}", call, "validation.early_exit", f"{qual}() inside the training loop"))
    for jump in script.jumps:
        if not _inside(jump, loop):
            continue
        if isinstance(jump, ast.Raise) and jump.exc is not None:
            target = jump.exc.func if isinstance(jump.exc, ast.Call) else jump.exc
            if script.qual(target) in ("SystemExit", "KeyboardInterrupt", "builtins.SystemExit"):
                hits.append(_Hit("raise:SystemExit", jump, "validation.early_exit",
                                 "raises SystemExit inside the training loop"))
        elif isinstance(jump, ast.Return) and script.scope_of(jump) is script.scope_of(loop):
            hits.append(_Hit("return", jump, "validation.early_exit", "returns from inside the training loop"))
        elif isinstance(jump, ast.Break) and _innermost_loop(jump, script.scope_of(jump)) is loop:
            last = facts.loop.last_names
            conds = _conditions(jump, loop)
            guarded = any(_fires(t, p, last | ({facts.loop.step_var} if facts.loop.step_var else set()), last) == "yes"
                          for t, p in conds)
            if not guarded:
                hits.append(_Hit("break", jump, "validation.early_exit",
                                 "a break leaves the training loop before the last step"))
    return hits


# ==================================================================================================== checks: val tokens


@dataclass
class _ValSize:
    canon: str
    refs_tokens: bool
    data: set[str]
    consts: Counter
    slice_consts: Counter
    loader_consts: Counter
    exits: int
    loop: ast.AST


@_memo
def _val_size(facts: _Facts) -> _ValSize | None:
    script = facts.script
    loops = [l for l in facts.score.loops if l is not facts.loop.node]
    if not loops:
        return None
    loop = loops[0]
    scope = script.scope_of(loop)
    head = loop.iter if isinstance(loop, (ast.For, ast.AsyncFor)) else loop.test
    exprs = [head]
    frontier = [head]
    direct = 0
    for depth in range(2):
        nxt = []
        for expr in frontier:
            for n in _walk(expr, 200):
                if isinstance(n, ast.Name):
                    for d in script.reaching(n.id, scope, loop.lineno, loop)[:3]:
                        if d.value is not None and d.kind in ("assign", "ann", "aug"):
                            nxt.append(d.value)
        exprs.extend(nxt)
        frontier = nxt
        if depth == 0:
            direct = len(exprs)  # the loop's head and the bindings it names directly
    ids: set[str] = set()
    consts: Counter = Counter()
    for i, expr in enumerate(exprs):
        for n in _walk(expr, 300):
            if isinstance(n, ast.Name):
                ids.add(n.id)
            elif isinstance(n, ast.Attribute):
                ids.add(n.attr)
            elif i < direct and (v := _number(n)) is not None and v not in (0, 1):
                consts[repr(float(v))] += 1
    refs = any("val_tokens" in i.lower() for i in ids)
    data = _provenance(script, [(head, scope, loop.lineno)], budget=60)
    slice_consts: Counter = Counter()
    exits = 0
    loader_roots = []
    for n in _walk(loop, 4000):
        if isinstance(n, ast.Subscript) and isinstance(n.slice, (ast.Slice, ast.Tuple)):
            for m in _walk(n.slice, 100):
                if (v := _number(m)) is not None and v not in (0, 1, -1):
                    slice_consts[repr(float(v))] += 1
        elif isinstance(n, (ast.Break, ast.Return)) and _innermost_loop(n, scope) is loop:
            exits += 1
        elif isinstance(n, ast.Call):
            func = n.func
            if isinstance(func, ast.Name) and func.id == "next" and n.args and isinstance(n.args[0], ast.Name):
                loader_roots.append(n.args[0].id)
            elif isinstance(func, ast.Attribute) and func.attr in ("next_batch", "send") and isinstance(func.value, ast.Name):
                loader_roots.append(func.value.id)
    loader_consts: Counter = Counter()
    for name in loader_roots[:4]:
        for d in script.reaching(name, scope, loop.lineno)[:2]:
            if isinstance(d.value, ast.Call):
                for arg in [*d.value.args, *(k.value for k in d.value.keywords)]:
                    for m in _walk(arg, 100):
                        if isinstance(m, ast.BinOp):
                            for side in (m.left, m.right):
                                if (v := _number(side)) is not None:
                                    loader_consts[repr(float(v))] += 1
    chunk = _chunk(script, loop)
    if chunk is not None:  # range(0, N, c) read as x[i:i + c]: covers all N whatever c is
        consts.pop(chunk, None)
        slice_consts.pop(chunk, None)
    canon = "|".join(_canon(e, script) for e in exprs[:direct])
    return _ValSize(canon, refs, data, consts, slice_consts, loader_consts, exits, loop)


def _chunk(script: _Script, loop: ast.AST) -> str | None:
    """The chunk size c of a loop `for i in range(0, N, c)` whose every slice on i is [i:i + c], else None."""
    if not isinstance(loop, (ast.For, ast.AsyncFor)) or not isinstance(loop.target, ast.Name):
        return None
    it = loop.iter
    if not (isinstance(it, ast.Call) and script.qual(it.func) == "range" and len(it.args) == 3
            and _const_eval(it.args[0]) == 0):
        return None
    step = _const_eval(it.args[2])
    if not isinstance(step, int) or step <= 0:
        return None
    var = loop.target.id
    for n in _walk(loop, 4000):
        if isinstance(n, ast.Slice) and (_mentions(n, {var})):
            upper = n.upper
            if not (isinstance(n.lower, ast.Name) and n.lower.id == var and n.step is None
                    and isinstance(upper, ast.BinOp) and isinstance(upper.op, ast.Add)
                    and isinstance(upper.left, ast.Name) and upper.left.id == var and _const_eval(upper.right) == step):
                return None
    return repr(float(step))


@_memo
def _val_tokens_values(facts: _Facts) -> list[tuple[Any, _Def]]:
    script = facts.script
    out = []
    for d in [*script.defs_by_name.get("val_tokens", []), *script.attr_defs.get(".val_tokens", [])]:
        if d.kind in ("param", "def", "import"):
            continue
        if isinstance(getattr(d.node, "_p", None), ast.ClassDef) and d in script.defs_by_name.get("val_tokens", []):
            continue  # the class attribute is listed again under ".val_tokens"
        value = _const_eval(d.value)
        out.append((value if value is not None else _canon(d.value, script, blind=False) + f"|{d.kind}{d.op}", d))
    return out


def _check_val_tokens(base: _Facts, new: _Facts) -> list[Finding]:
    findings: list[Finding] = []
    base_values, new_values = _val_tokens_values(base), _val_tokens_values(new)
    if any(isinstance(v, int) for v, _ in base_values):
        have = Counter(v for v, _ in base_values)
        for value, d in new_values:
            if have.get(value, 0) > 0:
                have[value] -= 1
                continue
            findings.append(_rule("val_tokens.changed", BLOCK, new.script, d.node, "new",
                                  f"val_tokens is set to {value if not isinstance(value, str) else 'a new value'}"
                                  f" (the base uses {_names(str(v) for v, _ in base_values)})"))
        if not new_values:
            findings.append(_rule("val_tokens.changed", BLOCK, base.script, base_values[0][1].node, "base",
                                  "val_tokens is gone"))
    bs, ns = _val_size(base), _val_size(new)
    if bs is None:
        return findings
    if ns is None:
        if new.val:
            findings.append(_rule("val_tokens.changed", BLOCK, base.script, bs.loop, "base",
                                  "the validation loop no longer feeds the printed val loss"))
        return findings
    loop = ns.loop
    reasons = []
    if bs.refs_tokens and not ns.refs_tokens:
        reasons.append("the validation step count no longer derives from val_tokens")
    if bs.data and not bs.data <= ns.data:
        reasons.append("the validation loop no longer runs over the whole validation set")
    extra = ns.consts - bs.consts
    if extra:
        reasons.append(f"the validation step count now involves {_names(extra)}")
    if ns.exits > bs.exits:
        reasons.append("the validation loop can stop early")
    extra = ns.slice_consts - bs.slice_consts
    if extra:
        reasons.append(f"the validation batches are sliced with {_names(extra)}")
    extra = ns.loader_consts - bs.loader_consts
    if extra:
        reasons.append(f"the validation loader's batch now involves {_names(extra)}")
    for reason in reasons:
        findings.append(_rule("val_tokens.changed", BLOCK, new.script, loop, "new", reason))
    if not reasons and ns.canon != bs.canon:
        findings.append(_rule("val_tokens.steps_refactored", NOTE, new.script, loop, "new",
                              "the validation step count is derived differently (still from the same facts)"))
    return findings


# ==================================================================================================== checks: data


_DATA_WORDS = re.compile(r"data|shard|loader|batch|generator|stream|token|dataset", re.IGNORECASE)
_DATA_IDS = re.compile(r"train|files|shard|loader|dataset|stream|tokens|batch", re.IGNORECASE)


@_memo
def _data_strings(facts: _Facts) -> dict[str, ast.AST]:
    out: dict[str, ast.AST] = {}
    for const in facts.script.strings:
        value = const.value
        if not _DATA_STRING.search(value) or isinstance(getattr(const, "_p", None), ast.Expr):
            continue
        if len(value) > 200 or "\n" in value or " " in value.strip():
            continue  # a message that mentions a file, not a path
        out.setdefault(value, const)
    return out


@_memo
def _data_env(facts: _Facts) -> dict[str, ast.AST]:
    return {key: node for key, node, kind in _env_uses(facts.script)
            if key and kind == "read" and _DATA_ENV.search(key)}


def _check_data(base: _Facts, new: _Facts) -> list[Finding]:
    findings: list[Finding] = []
    bs, ns = _data_strings(base), _data_strings(new)
    added, removed = sorted(set(ns) - set(bs)), sorted(set(bs) - set(ns))
    by_name = {_basename(r): r for r in removed}
    for path in added:
        old = by_name.pop(_basename(path), None)
        if old is not None:
            removed.remove(old)
            findings.append(_rule("data.location_changed", NOTE, new.script, ns[path], "new",
                                  f"the data folder changed: {old!r} became {path!r} (same file pattern)"))
            continue
        findings.append(_rule("data.changed", BLOCK, new.script, ns[path], "new", f"a new data file pattern {path!r}"))
    for path in removed:
        findings.append(_rule("data.changed", BLOCK, base.script, bs[path], "base",
                              f"the data file pattern {path!r} is gone"))
    be, ne = _data_env(base), _data_env(new)
    for key in sorted(set(ne) - set(be)):
        findings.append(_rule("data.location_changed", NOTE, new.script, ne[key], "new",
                              f"the data folder now comes from the env var {key}"))
    for key in sorted(set(be) - set(ne)):
        findings.append(_rule("data.location_changed", NOTE, base.script, be[key], "base",
                              f"the data env var {key} is no longer read"))
    if base.script.magic and not new.script.magic:
        findings.append(_rule("data.changed", BLOCK, base.script, base.script.magic[0], "base",
                              f"the shard header check (magic {_SHARD_MAGIC}) is gone"))
    if _has_uint16(base.script) and not _has_uint16(new.script):
        findings.append(_rule("data.changed", BLOCK, base.script, 0, "base",
                              "the shard tokens are no longer read as uint16"))
    if base.train_data and new.train_data != base.train_data:
        node = next((r[0] for r in _backward_roots(new.script, new.loop.node)), None) if new.loop.node else None
        added_data = new.train_data - base.train_data
        if not new.train_data:
            reason = "the training batches can no longer be traced to the training shards"
        elif any("val" in p.lower() for p in added_data):
            reason = f"training now reads validation data ({_names(added_data)})"
        else:
            reason = f"training reads {_names(new.train_data)} instead of {_names(base.train_data)}"
        findings.append(_rule("data.train_source_changed", BLOCK, new.script, node or 0, "new", reason))
    findings.extend(_hit_findings(_extra(_stream_hits(base), _stream_hits(new), new, base), new))
    base_seeds, extra_seeds = _seed_hits(base), _extra(_seed_hits(base), _seed_hits(new), new, base)
    for hit in extra_seeds:
        if base_seeds:
            findings.append(_rule("data.seed_changed", BLOCK, new.script, hit.node, "new", hit.reason))
        else:
            findings.append(_rule("data.seed_added", NOTE, new.script, hit.node, "new", hit.reason))
    return findings


_SEEDERS = frozenset({"torch.manual_seed", "torch.cuda.manual_seed", "torch.cuda.manual_seed_all", "torch.random.manual_seed",
                      "numpy.random.seed", "numpy.random.default_rng", "numpy.random.RandomState", "random.seed",
                      "random.Random", "torch.Generator"})


@_memo
def _seed_hits(facts: _Facts) -> list[_Hit]:
    script = facts.script
    hits = []
    for call in script.calls_named("manual_seed", "manual_seed_all", "seed", "default_rng", "RandomState", "Random",
                                   "Generator"):
        func = call.func
        name = func.attr if type(func) is ast.Attribute else func.id if type(func) is ast.Name else ""
        qual = script.qual(func) or ""
        if qual in _SEEDERS or name == "manual_seed":
            key = _canon(call, script, blind=False)
            hits.append(_Hit(f"seed:{key}", call, "data.seed_changed", f"a random seed is set: {_short(call)}"))
    return hits


def _has_uint16(script: _Script) -> bool:
    return script.has_uint16 or any(c.value in _DTYPE_MARKERS for c in script.strings)


def _data_region(script: _Script, node: ast.AST) -> bool:
    for parent in _parents(node):
        if isinstance(parent, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and _DATA_WORDS.search(parent.name):
            return True
    stmt = _statement(node)
    return any(isinstance(n, ast.Name) and _DATA_IDS.search(n.id) for n in _walk(stmt, 300))


@_memo
def _stream_hits(facts: _Facts) -> list[_Hit]:
    script = facts.script
    hits: list[_Hit] = []
    for call in script.calls:
        func = call.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if name in _SHUFFLES and _data_region(script, call):
            hits.append(_Hit(f"shuffle:{name}", call, "data.stream_reordered",
                             f"{name}() reorders data the base reads in order"))
        elif name == "sorted" and any(k.arg == "reverse" for k in call.keywords) and _data_region(script, call):
            hits.append(_Hit("sorted-reverse", call, "data.stream_reordered", "the data files are read in reverse"))
    for node in _subscripts(script):
        sl = node.slice
        if isinstance(sl, ast.Slice) and sl.step is not None and _data_region(script, node):
            step = _const_eval(sl.step)
            if step != 1:
                hits.append(_Hit(f"slice-step:{step}", node, "data.stream_reordered",
                                 "the data is read with a stride or backwards"))
        elif isinstance(sl, ast.Slice) and sl.lower is not None and _file_list(script, node.value):
            hits.append(_Hit("skip-files", node, "data.stream_reordered", "some data files are skipped"))
        elif isinstance(sl, ast.Slice) and (lower := _const_eval(sl.lower)) not in (None, 0, 1, -1) \
                and _data_region(script, node):
            hits.append(_Hit(f"skip-tokens:{lower}", node, "data.stream_reordered",
                             f"the data is read from offset {lower} on"))
    return hits


def _file_list(script: _Script, node: ast.AST) -> bool:
    """A list of shard files: a name like files/shards/paths, or sorted(glob(...)) itself."""
    if isinstance(node, ast.Name):
        return bool(re.search(r"files|shards|paths", node.id, re.IGNORECASE))
    if isinstance(node, ast.Call):
        qual = script.qual(node.func) or ""
        method = node.func.attr if isinstance(node.func, ast.Attribute) else ""
        if qual in ("sorted", "list") and node.args:
            return _file_list(script, node.args[0])
        return qual in ("glob.glob", "glob.iglob") or method in ("glob", "rglob")
    return False


def _subscripts(script: _Script) -> Iterator[ast.Subscript]:
    return iter(script.slices)


# ==================================================================================================== checks: clock


def _in_loop(node: ast.AST, loop: ast.AST | None) -> bool:
    return loop is not None and _inside(node, loop)


@_memo
def _timer_items(facts: _Facts) -> list[tuple[str, _Def]]:
    script, loop = facts.script, facts.loop
    return [(f"{d.kind}|{d.op}|{_canon(d.value, script)}|{_in_loop(d.node, loop.node)}", d)
            for d in loop.timer_defs if d.kind not in ("param", "import", "def")]


def _is_accum_stmt(stmt: ast.AST, accums: list[_Def]) -> bool:
    return any(d.node is stmt for d in accums)


def _contains_accum(stmt: ast.AST, accums: list[_Def]) -> bool:
    return any(d.node is stmt or _inside(d.node, stmt) for d in accums)


@_memo
def _restarts(facts: _Facts) -> list[_Def]:
    loop = facts.loop
    return [d for d in loop.clock_defs if d.kind == "assign" and _in_loop(d.node, loop.node)]


def _paired(stmt: ast.AST, facts: _Facts) -> bool:
    """Whether the elapsed time was added to train_time earlier in the same block as this restart of t0."""
    return any(_is_accum_stmt(s, facts.loop.accums) for s in _siblings_before(stmt))


def _preceded(stmt: ast.AST, facts: _Facts) -> bool:
    """Whether the elapsed time was added to train_time before `stmt` runs (in its block or an enclosing one
    inside the loop)."""
    loop = facts.loop.node
    node = stmt
    while node is not None and node is not loop:
        if any(_contains_accum(s, facts.loop.accums) for s in _siblings_before(node)):
            return True
        node = getattr(node, "_p", None)
    return False


@_memo
def _windows(facts: _Facts) -> list[tuple[ast.AST, set[str]]]:
    """For each pause of the clock inside the loop: the training work that runs while it is paused."""
    loop = facts.loop
    out = []
    restart_stmts = {id(d.node) for d in _restarts(facts)}
    for d in loop.accums:
        if not _in_loop(d.node, loop.node):
            continue
        markers: set[str] = set()
        for stmt in _siblings_after(d.node):
            if id(stmt) in restart_stmts or any(id(n) in restart_stmts for n in _walk(stmt, 2000)):
                break
            markers |= _work_markers(facts.script, stmt)
        out.append((d.node, markers))
    return out


def _work_markers(script: _Script, stmt: ast.AST, depth: int = 0) -> set[str]:
    """The training work a statement does: backward, optimizer steps, train batches -- also inside the module's
    own functions it calls (two calls deep)."""
    out = set()
    for n in _walk(stmt, 3000):
        if isinstance(n, ast.Call):
            func = n.func
            function = script.function_named(func) if depth < 2 else None
            if function is not None and function is not stmt:
                out |= _work_markers(script, function, depth + 1)
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            receiver = _root_name(func.value) if isinstance(func, ast.Attribute) else None
            if name in ("next_batch", "send"):
                if receiver is not None and "train" in receiver.lower():
                    out.add(f"{receiver}.{name}")
            elif name in _TRAIN_WORK:
                out.add(name)
            elif name == "next" and n.args and "train" in (_root_name(n.args[0]) or "").lower():
                out.add("next(train)")
    return out


def _is_sync(script: _Script, stmt: ast.AST) -> bool:
    if not isinstance(stmt, ast.Expr) or not isinstance(stmt.value, ast.Call):
        return False
    func = stmt.value.func
    return isinstance(func, ast.Attribute) and func.attr == "synchronize"


def _synced(script: _Script, stmt: ast.AST) -> bool:
    return any(_is_sync(script, s) for s in _siblings_before(stmt)[-2:])


@_memo
def _clock_reads(facts: _Facts) -> list[tuple[str, ast.AST]]:
    loop = facts.loop
    reads = [("stop", d.node) for d in loop.accums if _in_loop(d.node, loop.node)]
    reads += [("start", d.node) for d in _restarts(facts)]
    if loop.node is not None:
        before = [d for d in loop.clock_defs if d.kind == "assign" and not _in_loop(d.node, loop.node)
                  and d.line < loop.node.lineno and d.scope is facts.script.scope_of(loop.node)]
        if before:
            reads.append(("start", before[-1].node))
    return reads


def _check_timer(base: _Facts, new: _Facts) -> list[Finding]:
    findings: list[Finding] = []
    findings.extend(_hit_findings(_extra(_patches(base), _patches(new), new, base), new))
    bl, nl = base.loop, new.loop
    if not bl.accums:
        return findings
    if not nl.accums:
        node = new.val[0].node if new.val else 0
        findings.append(_rule("timer.shrunk", BLOCK, new.script, node, "new",
                              "train_time is no longer accumulated from the clock"))
        return findings
    have = Counter(key for key, _ in _timer_items(base))
    base_accum_canons = {key.rsplit("|", 1)[0] for key, d in _timer_items(base) if d in bl.accums}
    for key, d in _timer_items(new):
        if have.get(key, 0) > 0:
            have[key] -= 1
            continue
        in_loop = _in_loop(d.node, nl.node)
        if d in nl.accums:
            if key.rsplit("|", 1)[0] not in base_accum_canons:
                findings.append(_rule("timer.shrunk", BLOCK, new.script, d.node, "new",
                                      "the elapsed time is added to train_time in a new way"))
            continue  # one more pause: judged by its window below
        if d.kind in ("assign", "ann") and _const_eval(d.value) in _ZERO_VALUES:
            if in_loop:
                findings.append(_rule("timer.restart", BLOCK, new.script, d.node, "new",
                                      "train_time is reset inside the training loop"))
            continue
        findings.append(_rule("timer.shrunk", BLOCK, new.script, d.node, "new",
                              f"train_time is changed by something other than elapsed time ({d.kind}{d.op})"))
    if _val_after_stop(base) and not _val_after_stop(new):
        node = new.val[0].node if new.val else 0
        findings.append(_rule("timer.shrunk", BLOCK, new.script, node, "new",
                              "the val line prints train_time without adding the time elapsed since t0"))
    clock_canons = {_canon(d.value, base.script) for d in bl.clock_defs}
    for d in nl.clock_defs:
        canon = _canon(d.value, new.script)
        if d.kind in ("param", "import", "def") or canon == "CLOCK()" or canon in clock_canons:
            continue
        findings.append(_rule("timer.restart", BLOCK, new.script, d.node, "new",
                              "t0 is set to something other than the clock"))
    base_unpaired = sum(not _paired(d.node, base) for d in _restarts(base))
    unpaired = [d for d in _restarts(new) if not _paired(d.node, new)]
    if len(unpaired) > base_unpaired:
        findings.append(_rule("timer.restart", BLOCK, new.script, unpaired[-1].node, "new",
                              "t0 restarts without adding the elapsed time: the work before it is not timed"))
    bw, nw = _windows(base), _windows(new)
    base_markers = set().union(*(m for _, m in bw)) if bw else set()
    extra_work = [(stmt, m - base_markers) for stmt, m in nw if m - base_markers]
    for stmt, markers in extra_work[:2]:
        findings.append(_rule("timer.restart", BLOCK, new.script, stmt, "new",
                              f"training work ({_names(markers)}) runs while the clock is paused"))
    if not extra_work and len(nw) > len(bw):
        findings.append(_rule("timer.pause_added", NOTE, new.script, nw[-1][0], "new",
                              "the clock is paused at one more place (no training work inside)"))
    findings.extend(_sync_findings(base, new))
    return findings


def _sync_findings(base: _Facts, new: _Facts) -> list[Finding]:
    """A clock read without torch.cuda.synchronize() right before it, where the base synchronizes."""
    findings: list[Finding] = []
    base_reads, new_reads = _clock_reads(base), _clock_reads(new)
    for role in ("stop", "start"):
        if not any(r == role and _synced(base.script, n) for r, n in base_reads):
            continue  # the base never synchronizes (a CPU track)
        unsynced_base = sum(1 for r, n in base_reads if r == role and not _synced(base.script, n))
        unsynced = [n for r, n in new_reads if r == role and not _synced(new.script, n)]
        if len(unsynced) > unsynced_base:
            verb = "stopped" if role == "stop" else "started"
            findings.append(_rule("timer.sync_removed", BLOCK, new.script, unsynced[-1], "new",
                                  f"the clock is {verb} without torch.cuda.synchronize() first"))
    return findings


@_memo
def _val_after_stop(facts: _Facts) -> bool:
    """Whether the elapsed time is added to train_time before the val line prints it."""
    loop = facts.loop.node
    if loop is None:
        return False
    for t in facts.val:
        for anchor in _anchors(facts.script, t.node):
            if _inside(anchor, loop) and _preceded(_statement(anchor), facts):
                return True
    return False


_PATCH_ROOTS = ("time.", "torch.cuda.", "builtins.", "sys.stdout", "sys.stderr", "torch.distributed.")
_PATCH_NAMES = frozenset({"print", "perf_counter", "synchronize", "monotonic"})


@_memo
def _patches(facts: _Facts) -> list[_Hit]:
    """Replacing the clock, synchronize, print or stdout."""
    script = facts.script
    hits: list[_Hit] = []
    for node in script.attr_stores:
        qual = script.qual(node) or ""
        if qual.startswith(_PATCH_ROOTS) or qual in ("sys.stdout", "sys.stderr", "time", "torch.cuda"):
            hits.append(_Hit(f"attr:{qual}", node, "timer.patched", f"{qual} is replaced"))
    module_level = {id(script.tree)}
    for name, node in script.name_stores:
        target = script.aliases.get(name)
        if target is not None and (target in _CLOCKS or target in ("time", "torch", "torch.cuda")
                                   or target.endswith(".synchronize")):
            hits.append(_Hit(f"rebind:{name}", node, "timer.patched", f"{name} ({target}) is rebound"))
        elif name in _PATCH_NAMES and id(script.scope_of(node)) in module_level:
            hits.append(_Hit(f"rebind:{name}", node, "timer.patched", f"{name} is redefined"))
    for name in _PATCH_NAMES:
        for function in script.functions.get(name, []):
            if script.scope_of(function) is script.tree:
                hits.append(_Hit(f"rebind:{name}", function, "timer.patched", f"{name}() is redefined"))
    for call in script.calls_named("setattr", "patch", "object"):
        qual = script.qual(call.func) or ""
        if qual in ("setattr", "builtins.setattr") and call.args:
            target = script.qual(call.args[0]) or ""
            if target in ("time", "torch.cuda", "builtins", "sys", "sys.stdout", "torch") or target.startswith(_PATCH_ROOTS):
                hits.append(_Hit(f"setattr:{target}", call, "timer.patched", f"setattr() patches {target}"))
        elif qual.endswith(("mock.patch", "mock.patch.object", "patch.object", "monkeypatch.setattr")):
            hits.append(_Hit(f"mock:{qual}", call, "timer.patched", "a mock patch replaces a function"))
    for module in ("time", "torch"):
        alias = script.aliases.get(module)
        if alias is not None and alias != module and not alias.startswith(module + "."):
            hits.append(_Hit(f"import-as:{module}", 0, "timer.patched", f"{alias} is imported as {module}"))
    return hits


# ==================================================================================================== checks: compile flags


@_memo
def _compile_hits(facts: _Facts) -> list[_Hit]:
    script = facts.script
    hits: list[_Hit] = []
    for node in script.attr_stores:
        qual = script.qual(node) or ""
        if qual.startswith(("torch._inductor.config", "torch._dynamo.config")) or node.attr == "coordinate_descent_tuning":
            parent = getattr(node, "_p", None)
            value = _canon(getattr(parent, "value", None), script)
            if node.attr in _LIMIT_FLAGS:
                hits.append(_Hit(f"{qual}={value}", node, "compile_flags.limit_changed",
                                 f"{qual} is set to {value}", NOTE))
            else:
                hits.append(_Hit(f"{qual}={value}", node, "compile_flags.banned", f"{qual} is set"))
    for call in script.calls:
        root = _root_name(call.func)
        if root is not None and not script.aliases.get(root, root).startswith("torch") and root != "setattr":
            continue
        qual = script.qual(call.func) or ""
        if qual.startswith(("torch._inductor.config.", "torch._dynamo.config.")):
            hits.append(_Hit(f"call:{qual}:{_canon(call, script)}", call, "compile_flags.banned", f"{qual}() changes flags"))
        elif qual in ("setattr", "builtins.setattr") and call.args:
            target = script.qual(call.args[0]) or ""
            if target.startswith(("torch._inductor.config", "torch._dynamo.config")):
                hits.append(_Hit(f"setattr:{_canon(call, script)}", call, "compile_flags.banned", f"setattr() on {target}"))
        elif qual == "torch.compile":
            for kw in call.keywords:
                if kw.arg in ("mode", "options", "backend"):
                    value = _canon(kw.value, script, blind=False)
                    hits.append(_Hit(f"compile:{kw.arg}={value}", call, "compile_flags.banned",
                                     f"torch.compile(..., {kw.arg}={_short(kw.value)})"))
    for key, node, kind in _env_uses(script):
        if kind == "write" and key and _COMPILE_ENV.search(key):
            hits.append(_Hit(f"env:{key}", node, "compile_flags.banned", f"the env var {key} sets compiler flags"))
    return hits


def _check_compile(base: _Facts, new: _Facts) -> list[Finding]:
    return _hit_findings(_extra(_compile_hits(base), _compile_hits(new), new, base), new)


# ==================================================================================================== checks: calls


def _literal_strings(call: ast.Call) -> tuple[str, ...]:
    out = []
    for arg in [*call.args, *(k.value for k in call.keywords)]:
        for n in _walk(arg, 200):
            if isinstance(n, ast.Constant) and isinstance(n.value, str):
                out.append(n.value)
    return tuple(sorted(out))


def _is_nvidia_smi(call: ast.Call) -> bool:
    if not call.args:
        return False
    first = call.args[0]
    if isinstance(first, (ast.List, ast.Tuple)) and len(first.elts) == 1:
        first = first.elts[0]
    return isinstance(first, ast.Constant) and first.value == "nvidia-smi"


@_memo
def _call_hits(facts: _Facts) -> list[_Hit]:
    script = facts.script
    hits: list[_Hit] = []
    for call in script.calls:
        func = call.func
        method = func.attr if type(func) is ast.Attribute else ""
        root = _root_name(func)
        top = script.aliases.get(root, root).split(".")[0] if root else ""
        if root is not None and top not in _DANGER_TOPS and method not in _DANGER_METHODS:
            continue
        qual = script.qual(func) or ""
        if not _maybe_danger(qual, method):
            continue
        literals = _literal_strings(call)
        key = f"{qual or method}:{literals}"
        hit = _danger(script, call, qual, method, literals, key)
        if hit is not None:
            hits.append(hit)
    for module, node in script.imports:
        top = module.split(".")[0]
        rule = ("process.spawn" if top in _PROCESS_MODULES else "network.call" if top in _NETWORK_MODULES
                else "code_loading.weights" if top in ("pickle", "marshal", "dill", "cloudpickle", "shelve")
                else "code_loading.dynamic" if top in _CODE_MODULES else None)
        if module.startswith("torch.hub"):
            rule = "network.call"
        if rule is not None:
            hits.append(_Hit(f"import:{top}", node, rule, f"imports {module}"))
    return hits


def _only_nvidia_smi(script: _Script, node: ast.AST) -> bool:
    """Whether every use of the names an import binds is a plain nvidia-smi call or a subprocess constant."""
    bound = {a.asname or a.name.split(".")[0] for a in getattr(node, "names", [])}
    for n in _walk(script.tree, 10**7):
        if type(n) is not ast.Name or n.id not in bound or type(n.ctx) is not ast.Load:
            continue
        parent = getattr(n, "_p", None)
        if isinstance(parent, ast.Attribute) and parent.attr in ("PIPE", "STDOUT", "DEVNULL"):
            continue
        call = getattr(parent, "_p", None)
        if isinstance(parent, ast.Attribute) and isinstance(call, ast.Call) and call.func is parent \
                and _is_nvidia_smi(call):
            continue
        return False
    return True


_DANGER_TOPS = (_PROCESS_MODULES | _NETWORK_MODULES | _CODE_MODULES |
                {"os", "asyncio", "platform", "datasets", "torch", "numpy", "shutil", "io", "builtins", "pathlib",
                 "json", "joblib", "safetensors", "types", "open", "eval", "exec", "compile", "__import__",
                 "getattr", "globals", "vars", "locals"})
_DANGER_METHODS = _WRITE_METHODS | {"open", "read_text", "read_bytes", "from_pretrained"}


def _maybe_danger(qual: str, method: str) -> bool:
    """A cheap pre-filter: only calls that could be dangerous are looked at closely."""
    return qual.split(".")[0] in _DANGER_TOPS or method in _DANGER_METHODS or qual in _READ_CALLS


def _danger(script: _Script, call: ast.Call, qual: str, method: str, literals: tuple[str, ...],
            key: str) -> _Hit | None:
    if qual in _PROCESS_EXACT or qual.startswith(_PROCESS_PREFIX):
        if qual.startswith("subprocess.") and qual.split(".")[-1] in ("PIPE", "STDOUT", "DEVNULL"):
            return None
        if _is_nvidia_smi(call):
            return _Hit(key, call, "process.nvidia_smi", "runs nvidia-smi", NOTE)
        return _Hit(key, call, "process.spawn", f"runs a process: {qual}()")
    top = qual.split(".")[0]
    if top in _NETWORK_MODULES or qual in _NETWORK_EXACT or qual.startswith(_NETWORK_PREFIX):
        return _Hit(key, call, "network.call", f"network access: {qual}()")
    if method == "from_pretrained" or qual.endswith(".from_pretrained"):
        return _Hit(key, call, "code_loading.weights", "loads pretrained weights")
    if qual in _DYNAMIC_CODE or top in ("ctypes", "cffi"):
        if qual in ("eval", "exec", "compile", "builtins.eval", "builtins.exec", "builtins.compile", "__import__",
                    "importlib.import_module") and call.args and _harmless_literal(call.args[0], qual):
            return None
        return _Hit(key, call, "code_loading.dynamic", f"loads or runs code at run time: {qual}()")
    if qual in _UNPICKLE:
        if qual == "numpy.load" and not any(k.arg == "allow_pickle" and _const_eval(k.value) != 0 and
                                            not (isinstance(k.value, ast.Constant) and k.value.value is False)
                                            for k in call.keywords):
            return _read_hit(script, call, qual, key)
        return _Hit(key, call, "code_loading.weights", f"loads saved objects: {qual}()")
    if qual in _EXTENSIONS:
        return _Hit(key, call, "code_loading.extension", f"builds or loads a compiled extension: {qual}()", NOTE)
    if qual in ("getattr", "builtins.getattr") and len(call.args) >= 2:
        target = script.qual(call.args[0]) or ""
        name = call.args[1]
        literal = name.value if isinstance(name, ast.Constant) and isinstance(name.value, str) else None
        if target.split(".")[0] in _GETATTR_TARGETS or (literal in _DANGEROUS_NAMES) or \
                (literal is None and target in script.aliases.values()):
            return _Hit(key, call, "code_loading.dynamic", f"getattr() on {target or 'an object'} reaches code by name")
    if qual in ("globals", "vars", "locals") and isinstance(getattr(call, "_p", None), ast.Subscript):
        return _Hit(key, call, "code_loading.dynamic", f"{qual}()[...] reaches names by string")
    return _file_hit(script, call, qual, method, key)


def _harmless_literal(arg: ast.AST, qual: str) -> bool:
    if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
        return False
    if qual in ("__import__", "importlib.import_module"):
        return arg.value.split(".")[0] not in (_PROCESS_MODULES | _NETWORK_MODULES | _CODE_MODULES | {"os", "sys"})
    return not re.search(r"import|__|os\.|sys\.|open|environ|subprocess|socket|exec|eval|getattr", arg.value)


def _file_hit(script: _Script, call: ast.Call, qual: str, method: str, key: str) -> _Hit | None:
    paths: list[ast.AST] = []
    write = False
    if qual in ("open", "io.open", "builtins.open", "os.open") or (method == "open" and qual != "os.open"
                                                                  and not qual.startswith(("gzip", "tarfile"))):
        mode = call.args[1] if len(call.args) > 1 else next((k.value for k in call.keywords if k.arg == "mode"), None)
        if method == "open" and qual not in ("open", "io.open", "builtins.open"):
            mode = call.args[0] if call.args else mode
            paths = [call.func.value]
        else:
            paths = call.args[:1]
        text = mode.value if isinstance(mode, ast.Constant) and isinstance(mode.value, str) else ("r" if mode is None else "?")
        write = any(c in text for c in "wax+?")
        if qual == "os.open":
            write = True
    elif qual in _WRITE_CALLS:
        write = True
        paths = [call.args[i] for i in _WRITE_CALLS[qual] if i < len(call.args)]
    elif method in _WRITE_METHODS and isinstance(call.func, ast.Attribute):
        if method in ("replace", "rename") and _looks_like_str_method(call):
            return None
        write = True
        paths = [call.func.value, *call.args[:1]]
    elif qual in _READ_CALLS or method in ("read_text", "read_bytes"):
        paths = call.args[:1] if qual in _READ_CALLS else [call.func.value]  # type: ignore[union-attr]
    else:
        return None
    marks = set()
    for path in paths:
        marks |= _path_marks(script, path, script.scope_of(call), call.lineno)
    if "run" in marks:
        return _Hit(f"{key}:run", call, "filesystem.run_folder", "touches the runner's run folder or the session")
    outside = marks & {"abs", "home", "parent", "tmp"}
    if write and outside:
        return _Hit(f"{key}:{sorted(outside)}", call, "filesystem.outside_write",
                    f"writes outside the workspace ({', '.join(sorted(outside))} path)")
    if not write and marks & {"home", "parent"}:
        return _Hit(f"{key}:{sorted(marks)}", call, "filesystem.outside_read",
                    f"reads outside the workspace ({', '.join(sorted(marks & {'home', 'parent'}))} path)")
    return None


def _read_hit(script: _Script, call: ast.Call, qual: str, key: str) -> _Hit | None:
    marks = set()
    for path in call.args[:1]:
        marks |= _path_marks(script, path, script.scope_of(call), call.lineno)
    if marks & {"home", "parent", "run"}:
        return _Hit(f"{key}:{sorted(marks)}", call, "filesystem.outside_read", "reads outside the workspace")
    return None


def _looks_like_str_method(call: ast.Call) -> bool:
    """s.replace("a", "b") is a string method, not Path.replace(target)."""
    return len(call.args) >= 2 or isinstance(call.func.value, (ast.Constant, ast.JoinedStr))  # type: ignore[union-attr]


def _path_marks(script: _Script, expr: ast.AST, scope: ast.AST, line: int, depth: int = 0) -> set[str]:
    """What a path expression is made of: abs (a literal absolute path), home, parent (..), tmp, run (the run
    folder or the session), env (a path from the environment)."""
    marks: set[str] = set()
    if depth > 4 or expr is None:
        return marks
    head = _path_head(expr)
    for n in _walk(expr, 300):
        if isinstance(n, ast.Constant) and isinstance(n.value, str):
            value = n.value
            if ".." in value.replace("\\", "/").split("/"):
                marks.add("parent")
            if value.startswith("~"):
                marks.add("home")
            if any(m in value for m in _RUN_MARKERS):
                marks.add("run")
            if n is head and value.startswith("/") and not value.startswith("/dev/null"):
                marks.add("tmp" if value.startswith("/tmp") else "abs")
            elif n is not head and value.startswith("/") and _restarts_path(n):
                marks.add("abs")
        elif isinstance(n, ast.Call):
            qual = script.qual(n.func) or ""
            if qual in ("os.path.expanduser", "pathlib.Path.home", "Path.home") or qual.endswith(".home"):
                marks.add("home")
            elif qual.startswith("tempfile."):
                marks.add("tmp")
            elif qual in ("os.getenv", "os.environ.get") and n.args:
                marks |= _env_marks(n.args[0])
        elif isinstance(n, ast.Subscript) and script.qual(n.value) == "os.environ":
            marks |= _env_marks(n.slice)
        elif isinstance(n, ast.Attribute) and n.attr == "parent" and isinstance(n.value, ast.Attribute) \
                and n.value.attr == "parent":
            marks.add("parent")
        elif isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id not in script.aliases:
            for d in script.reaching(n.id, scope, line)[:3]:
                if d.value is not None and d.kind in ("assign", "ann", "aug", "with", "walrus"):
                    marks |= _path_marks(script, d.value, d.scope, d.line, depth + 1)
    return marks


def _path_head(expr: ast.AST) -> ast.AST | None:
    """The literal a path starts with, if any ("/tmp/x" in f"/tmp/x/{y}", os.path.join("/tmp", y), "/a" + b)."""
    node = expr
    for _ in range(20):
        if isinstance(node, ast.Constant):
            return node
        if isinstance(node, ast.JoinedStr):
            node = node.values[0] if node.values else None
        elif isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mod, ast.Div)):
            node = node.left
        elif isinstance(node, ast.Call) and node.args:
            node = node.args[0]
        else:
            return None
    return None


def _restarts_path(node: ast.AST) -> bool:
    """An absolute literal in a later os.path.join/Path argument (or after Path /) makes the whole path absolute."""
    parent = getattr(node, "_p", None)
    if isinstance(parent, ast.Call) and node in parent.args[1:]:
        name = parent.func.attr if isinstance(parent.func, ast.Attribute) else getattr(parent.func, "id", "")
        return name in ("join", "Path", "PurePath", "PosixPath", "joinpath")
    return isinstance(parent, ast.BinOp) and isinstance(parent.op, ast.Div) and parent.right is node


def _env_marks(key_node: ast.AST) -> set[str]:
    key = key_node.value if isinstance(key_node, ast.Constant) and isinstance(key_node.value, str) else None
    if key in ("HOME", "USERPROFILE", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME"):
        return {"home"}
    if key in _RUN_FOLDER_ENV:
        return {"run"}
    if key in ("TMPDIR", "TEMP", "TMP"):
        return {"tmp"}
    return {"env"}


def _check_calls(base: _Facts, new: _Facts) -> list[Finding]:
    hits = _extra(_call_hits(base), _call_hits(new), new, base)
    for i, hit in enumerate(hits):  # a new `import subprocess` used only for nvidia-smi is a note
        if hit.key == "import:subprocess" and _only_nvidia_smi(new.script, hit.node):
            hits[i] = _Hit(hit.key, hit.node, "process.nvidia_smi", hit.reason, NOTE)
    return _hit_findings(hits, new)


# ==================================================================================================== checks: environment


def _env_uses(script: _Script) -> list[tuple[str | None, ast.AST, str]]:
    """(key, node, read | write | bulk) for every use of the process environment."""
    cached = getattr(script, "_env_cache", None)
    if cached is not None:
        return cached
    out: list[tuple[str | None, ast.AST, str]] = []
    for node in script.environ:
        if script.qual(node) != "os.environ":
            continue
        parent = getattr(node, "_p", None)
        if isinstance(parent, ast.Subscript) and parent.value is node:
            key = parent.slice.value if isinstance(parent.slice, ast.Constant) and isinstance(parent.slice.value, str) else None
            kind = "read" if isinstance(parent.ctx, ast.Load) else "write" if isinstance(parent.ctx, ast.Store) else "del"
            out.append((key, parent, kind))
        elif isinstance(parent, ast.Attribute) and parent.value is node:
            call = getattr(parent, "_p", None)
            method = parent.attr
            if isinstance(call, ast.Call) and call.func is parent:
                first = call.args[0] if call.args else None
                key = first.value if isinstance(first, ast.Constant) and isinstance(first.value, str) else None
                if method in ("get", "pop", "__getitem__", "get_all"):
                    out.append((key, call, "read"))
                elif method == "setdefault":
                    out.append((key, call, "write"))
                    out.append((key, call, "read"))
                elif method == "update":
                    for arg in call.args:
                        if isinstance(arg, ast.Dict):
                            for k in arg.keys:
                                if isinstance(k, ast.Constant) and isinstance(k.value, str):
                                    out.append((k.value, call, "write"))
                    for kw in call.keywords:
                        out.append((kw.arg, call, "write"))
                else:
                    out.append((None, call, "bulk"))
            else:
                out.append((None, parent, "bulk"))
        elif isinstance(parent, ast.Compare) and any(isinstance(op, (ast.In, ast.NotIn)) for op in parent.ops):
            continue
        else:
            out.append((None, node, "bulk"))
    for call in script.calls_named("getenv", "getenvb", "get"):
        qual = script.qual(call.func)
        if qual in ("os.getenv", "os.getenvb", "os.environb.get"):
            first = call.args[0] if call.args else None
            key = first.value if isinstance(first, ast.Constant) and isinstance(first.value, str) else None
            out.append((key, call, "read"))
    script._env_cache = out  # type: ignore[attr-defined]
    return out


@_memo
def _env_hits(facts: _Facts) -> list[_Hit]:
    hits: list[_Hit] = []
    for key, node, kind in _env_uses(facts.script):
        if kind == "bulk":
            hits.append(_Hit("bulk", node, "secrets.read", "reads the whole environment (every secret in it)"))
        elif kind != "read":
            continue
        elif key is None:
            hits.append(_Hit("computed", node, "secrets.read",
                             "reads an environment variable whose name is computed (it may be a secret)"))
        elif key in _RUN_FOLDER_ENV:
            hits.append(_Hit(f"run:{key}", node, "filesystem.run_folder", f"reads {key}: the runner's run folder"))
        elif _SECRET_KEY.search(key):
            hits.append(_Hit(f"secret:{key}", node, "secrets.read", f"reads the secret {key}"))
    return hits


def _check_env(base: _Facts, new: _Facts) -> list[Finding]:
    return _hit_findings(_extra(_env_hits(base), _env_hits(new), new, base), new)


# ==================================================================================================== do-not-change blocks


_BEGIN = re.compile(r"^\s*#.*\b(do[\s-]+not[\s-]+(change|edit|modify)|protected\s+(block|region))", re.IGNORECASE)
_END = re.compile(r"^\s*#.*\bend\b.*\b(do[\s-]+not[\s-]+(change|edit|modify)|protected)", re.IGNORECASE)


def _strip_comment(line: str) -> str:
    """The line without a trailing # comment (quote-aware, good enough for one physical line)."""
    quote: str | None = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote and line[i - 1] != "\\":
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#":
            return line[:i]
    return line


def _norm(line: str) -> str:
    return re.sub(r"\s+", " ", _strip_comment(line).strip())


def _is_code(line: str) -> bool:
    return bool(_norm(line))


def protected_blocks(text: str) -> list[tuple[int, list[str]]]:
    """(first line number, lines) of every marked do-not-change block; the block runs to its end marker,
    else to the first blank line after code."""
    lines = text.splitlines()
    blocks: list[tuple[int, list[str]]] = []
    i = 0
    while i < len(lines):
        if _BEGIN.search(lines[i]) and not _END.search(lines[i]):
            start, body, j = i + 2, [], i + 1  # start: 1-based number of the first body line
            has_end = any(_END.search(l) for l in lines[i + 1 :])
            while j < len(lines):
                if _END.search(lines[j]) or (not has_end and not lines[j].strip() and any(_is_code(b) for b in body)):
                    break
                body.append(lines[j])
                j += 1
            blocks.append((start, body))
            i = j
        i += 1
    return blocks


_ANY_MARKER = re.compile(r"#[^\n]*\b(do[\s-]+not[\s-]+(change|edit|modify)|protected\s+(block|region))", re.IGNORECASE)


@lru_cache(maxsize=16)
def _blocks_of(text: str) -> tuple[tuple[int, tuple[str, ...]], ...]:
    if not _ANY_MARKER.search(text):
        return ()
    return tuple((start, tuple(body)) for start, body in protected_blocks(text))


def _block_findings(base_text: str, new_text: str) -> list[Finding]:
    base_blocks, new_blocks = _blocks_of(base_text), _blocks_of(new_text)
    findings: list[Finding] = []
    for i, (start, body) in enumerate(base_blocks):
        if i >= len(new_blocks):
            findings.append(_finding("protected_block.changed", BLOCK, start, "base", "do-not-change block removed",
                                     "the marked do-not-change block is gone"))
            continue
        new_start, new_body = new_blocks[i]
        old = [_norm(l) for l in body if l.strip()]
        new = [_norm(l) for l in new_body if l.strip()]
        if old != new:
            offset = next((k for k, (a, b) in enumerate(zip(old, new)) if a != b), min(len(old), len(new)))
            nonblank = [l for l in new_body if l.strip()]
            text = nonblank[offset].strip() if offset < len(nonblank) else "(lines removed)"
            line = new_start + next((k for k, l in enumerate(new_body) if l.strip() and _norm(l) == _norm(text)), 0)
            findings.append(_finding("protected_block.changed", BLOCK, line, "new", text,
                                     "a line inside the marked do-not-change block changed"))
    return findings


def _finding(rule: str, severity: str, line: int, where: str, text: str, reason: str) -> Finding:
    kind, why = RULES[rule]
    return Finding(rule, kind, severity, line, where, text, reason, why)


# ==================================================================================================== entry point

_CHECKS = (_check_score, _check_log_format, _check_validation, _check_val_tokens, _check_data, _check_timer,
           _check_compile, _check_calls, _check_env)


def check_integrity(base_text: str, new_text: str, track_name: str = "nanogpt") -> GuardReport:
    """Compare a candidate script (new) with the record's script (base): blocking findings for every changed
    protected fact and every added dangerous call, notes for refactors of protected areas whose facts hold.

    `track_name` is accepted for the callers; the checks derive everything from the two scripts (a track whose
    script has no CUDA synchronize, like micro, simply has none to lose)."""
    collecting = gc.isenabled()
    gc.disable()  # a check allocates ~100k short-lived nodes; a collection meanwhile would walk every cached tree
    try:
        return _check(base_text, new_text)
    finally:
        if collecting:
            gc.enable()


def _check(base_text: str, new_text: str) -> GuardReport:
    report = GuardReport()
    new = _facts(new_text)
    report.findings.extend(_block_findings(base_text, new_text))
    if new.script.error is not None:
        line = getattr(new.script, "error_line", 0)
        report.findings.append(_finding("syntax.unparsable", BLOCK, line, "new", new.script.line_text(line),
                                        f"the script does not parse: {new.script.error}"))
        return _finish(report)
    base = _facts(base_text)
    if base.script.error is not None:
        base = _facts("")
    for check in _CHECKS:
        report.findings.extend(check(base, new))
    return _finish(report)


def _finish(report: GuardReport) -> GuardReport:
    seen: set[tuple[str, str, int, str]] = set()
    unique = []
    for f in report.findings:
        key = (f.rule, f.where, f.line, f.reason)
        if key not in seen:
            seen.add(key)
            unique.append(f)
    unique.sort(key=lambda f: (f.severity != BLOCK, f.where != "new", f.line, f.rule))
    report.findings = unique
    return report


def timer_gap_flag(wall_time_s: float | None, train_time_ms: float | None,
                   allowance_s: float = 480.0, ratio: float = 1.0) -> str | None:
    """A warning when the script's own train_time disagrees with the wall clock the runner measured.

    train_time excludes validation and the untimed warm-up/compile, so it is always below the wall time; the
    gap is suspicious when train_time exceeds the wall time (a broken clock) or when more time ran untimed
    than both `allowance_s` (compile + validation; ~7 min on a first nanogpt run) and `ratio` × train_time.
    """
    from copilot.core.runs.metrics import timer_runs_fast

    if wall_time_s is None or train_time_ms is None or wall_time_s <= 0:
        return None
    train_s = train_time_ms / 1000.0
    if timer_runs_fast(wall_time_s, train_time_ms):
        return (f"the script reports train_time {train_s:.1f}s but the run took only {wall_time_s:.1f}s of wall "
                "time: its timer is wrong")
    untimed = wall_time_s - train_s
    if untimed > max(allowance_s, ratio * train_s):
        share = 100.0 * train_s / wall_time_s
        return (f"the script's train_time ({train_s:.1f}s) covers only {share:.0f}% of the wall time "
                f"({wall_time_s:.1f}s): {untimed:.0f}s ran untimed; check that the timer brackets all training")
    return None
