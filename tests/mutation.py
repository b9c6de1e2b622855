"""Mutation testing of four targets, each against only the tests that claim to check it.

    .venv/bin/python tests/mutation.py [--targets codec,journal,tell,agent-limits] [--jobs 2]
                                       [--markdown tests/MUTATION.md] [--json FILE] [--source worktree|head]

For each target (``TARGETS`` below) it makes every mutant cosmic-ray's operators
make (``pip install -e '.[mutation]'``): a comparison, a binary or boolean
operator, a number, a constant, an ``except`` clause, a decorator, a loop, one
at a time; runs the target's tests against each; and prints, per target, the
mutants made, killed (a test failed), survived (every test passed) and timed
out, the kill rate, and each survivor (file:line, the operator, the line before
and after). Survivors listed in ``EQUIVALENT`` are marked with the reason they
cannot (or need not) be killed.

Safe beside other work in the tree: **nothing in the checkout is ever
written.** The script snapshots the tree once (``git ls-files`` tracked plus
untracked-but-not-ignored files, as they are on disk; ``--source head``: the
last commit instead) into a temporary folder, one copy per job, and mutates
only those copies. Tests import the copy, not the editable install: each copy
gets a shim folder on ``PYTHONPATH`` holding a regular package ``abduce``
whose ``__path__`` is the copy's root, so ``abduce.controller`` is the copy's
``controller/`` (the path finder comes before the editable install's finder,
which is appended to ``sys.meta_path``). That is checked, not assumed, before
any mutant runs, per target: the module's ``__file__`` in a test process must
lie in the copy; the unmutated tests must pass; a planted ``raise`` at the top
of the target's main function must be killed (so the tests run the copy's
code); and a planted no-op statement must survive (so rewriting a file does
not by itself fail the tests). Bytecode is never written
(``PYTHONDONTWRITEBYTECODE``; a same-size mutant inside the same second would
otherwise be served stale from ``__pycache__``), hypothesis runs
derandomized with no example database, and pytest runs with ``-x``, no cache
and no xdist.

Mutations inside annotations are not made: every target module has ``from
__future__ import annotations`` and nothing evaluates these annotations, so
such a mutant is equivalent by construction.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import fnmatch
import io
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Target:
    """What to mutate and which tests must catch it.

    Attributes:
        file: the source file, relative to the repository root.
        module: its import name.
        functions: qualified names (``Class.method``) whose bodies are mutated; empty = the whole module.
        tests: test files (globs), run in this order, fastest and most specific first.
        canary: the function the pre-flight plants its always-killed ``raise`` in.
    """

    file: str
    module: str
    functions: tuple[str, ...]
    tests: tuple[str, ...]
    canary: str


TARGETS = {
    "codec": Target(
        "instruments/protocol/codec.py",
        "abduce.instruments.protocol.codec",
        (),
        (
            "tests/instruments/test_codec.py",
            "tests/instruments/test_codec_mutants.py",
            "tests/instruments/test_spec.py",
            "tests/instruments/test_codec_fuzz.py",
        ),
        "Codec.decode",
    ),
    "journal": Target(
        "controller/journal/store.py",
        "abduce.controller.journal.store",
        (),
        ("tests/controller/journal/test_journal_mutants.py", "tests/controller/journal/test_journal.py"),
        "Journal.append",
    ),
    "tell": Target(
        "controller/core/validation.py",
        "abduce.controller.core.validation",
        ("validated",),
        ("tests/controller/core/test_tell_validation.py", "tests/controller/core/test_campaign.py"),
        "validated",
    ),
    "tell-campaign": Target(  # tell's own body, after the validation moved to controller/core/validation.py
        "controller/core/campaign.py",
        "abduce.controller.core.campaign",
        ("Campaign.tell",),
        ("tests/controller/core/test_tell_validation.py", "tests/controller/core/test_campaign.py"),
        "Campaign.tell",
    ),
    "agent-limits": Target(
        "instruments/agent.py",
        "abduce.instruments.agent",
        ("InstrumentAgent.check",),
        ("tests/instruments/test_agent_limits.py", "tests/instruments/test_link_agent.py"),
        "InstrumentAgent.check",
    ),
}

# Survivors that cannot be killed, or need not be: (target, original line, mutated line) -> reason.
# Lines are compared stripped, so the entries survive edits elsewhere in the file.
SMALL_INT = "`is not` on two ints equal in value: CPython caches -5..256, and a length or dimension is far below 256"
EQUIVALENT: dict[tuple[str, str, str], str] = {
    (
        "codec",
        'if frame == b"{}":  # the common empty parent header / metadata',
        'if frame is b"{}":  # the common empty parent header / metadata',
    ): "a frame is never the literal's object, so the fast path is skipped and the full parse returns the same {}",
    (
        "codec",
        "except (UnicodeDecodeError, json.JSONDecodeError, ValueError, RecursionError) as exc:",
        "except (CosmicRayTestingException, json.JSONDecodeError, ValueError, RecursionError) as exc:",
    ): "UnicodeDecodeError is a ValueError, still caught by the ValueError in the same tuple",
    (
        "codec",
        'raise ValueError(f"{text[:40]} is not a finite number")',
        'raise ValueError(f"{text[: 41]} is not a finite number")',
    ): "harmless: how many characters of an overflowing number the error message quotes",
    (
        "codec",
        'raise ValueError(f"{text[:40]} is not a finite number")',
        'raise ValueError(f"{text[: 39]} is not a finite number")',
    ): "harmless: how many characters of an overflowing number the error message quotes",
    (
        "codec",
        'return int(version.split(".", 1)[0])',
        'return int(version.split(".", 2)[0])',
    ): "the part before the first dot is the same whether the rest is split once or twice",
    (
        "codec",
        "except (ValueError, ValidationError) as exc:",
        "except (ValueError, CosmicRayTestingException) as exc:",
    ): "pydantic's ValidationError is a ValueError, still caught by the ValueError beside it",
    (
        "codec",
        "while i < len(blob):",
        "while i != len(blob):",
    ): "i only grows by whole frames checked to fit (i + 4 + n <= len(blob)), so it never passes len(blob)",
    (
        "journal",
        "head = f.read(100)",
        "head = f.read( 101)",
    ): "only len(head) < 100 and the first 16 bytes are looked at: one byte more read changes neither",
    (
        "journal",
        r'if len(head) < 100 or not head.startswith(b"SQLite format 3\x00"):',
        r'if len(head) != 100 or not head.startswith(b"SQLite format 3\x00"):',
    ): "f.read(100) returns at most 100 bytes, so != 100 is < 100",
    (
        "journal",
        "conn = sqlite3.connect(uri, uri=True, isolation_level=None)",
        "conn = sqlite3.connect(uri, uri=False, isolation_level=None)",
    ): "this SQLite is built with URI filenames on (SQLITE_USE_URI=1, as Debian's is), so the flag changes "
    "nothing here; elsewhere the mutant opens a file named 'file:...' and is refused as another application",
    (
        "journal",
        'app_id = conn.execute("PRAGMA application_id").fetchone()[0]',
        'app_id = conn.execute("PRAGMA application_id").fetchone()[ -1]',
    ): "a one-column row: [-1] is [0]",
    (
        "journal",
        'version = conn.execute("PRAGMA user_version").fetchone()[0]',
        'version = conn.execute("PRAGMA user_version").fetchone()[ -1]',
    ): "a one-column row: [-1] is [0]",
    (
        "journal",
        'check = conn.execute("PRAGMA quick_check").fetchone()[0]',
        'check = conn.execute("PRAGMA quick_check").fetchone()[ -1]',
    ): "a one-column row: [-1] is [0]",
    ("journal", "if version != SCHEMA_VERSION:", "if version is not SCHEMA_VERSION:"): SMALL_INT,
    (
        "journal",
        'if check != "ok":',
        'if check < "ok":',
    ): "every problem quick_check reports starts with an upper-case letter or '*' ('*** in database', "
    "'NULL value', 'CHECK constraint failed'...), all of which sort below 'ok'",
    (
        "journal",
        "@staticmethod",
        "",
    ): "_lock_for is only called on the class (cls._lock_for), where a plain function takes the same argument",
    (
        "journal",
        "fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)",
        "fcntl.flock(lock, fcntl.LOCK_EX + fcntl.LOCK_NB)",
    ): "LOCK_EX (2) and LOCK_NB (4) share no bit: | is +",
    (
        "journal",
        "fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)",
        "fcntl.flock(lock, fcntl.LOCK_EX ^ fcntl.LOCK_NB)",
    ): "LOCK_EX (2) and LOCK_NB (4) share no bit: | is ^",
    (
        "journal",
        "self._syncer.shutdown(wait=True)",
        "self._syncer.shutdown(wait=False)",
    ): (
        "close() has already waited for the only fsync the one-thread pool can hold (flush, or the "
        "failed one it caught)"
    ),
    (
        "journal",
        'if durability == "now":',
        'if durability >= "now":',
    ): "durability was checked to be now, background or next, and only now sorts >= 'now'",
    (
        "journal",
        'elif durability == "background":',
        'elif durability <= "background":',
    ): "durability was checked to be now, background or next, and only background sorts <= 'background'",
    (
        "journal",
        'self._syncer = ThreadPoolExecutor(1, thread_name_prefix="journal-fsync")',
        'self._syncer = ThreadPoolExecutor( 2, thread_name_prefix="journal-fsync")',
    ): (
        "at most one fsync is ever submitted at a time (append waits for the pending one first), "
        "so a second thread never runs"
    ),
    (
        "journal",
        "if self._wal is None or self._wal[1] != ino:",
        "if self._wal is None or self._wal[ 0] != ino:",
    ): (
        "harmless: comparing the fd, not the inode, reopens the WAL on every fsync (closing the "
        "old fd): the same file is synced"
    ),
    (
        "journal",
        "if self._wal is None or self._wal[1] != ino:",
        "if self._wal is None or self._wal[1] is not ino:",
    ): "harmless: two inode numbers from two stat calls are never one object, so the WAL is reopened on every fsync "
    "(closing the old fd): the same file is synced",
    ("tell", "if len(x) != space.d:", "if len(x) is not space.d:"): SMALL_INT,
    ("agent-limits", "if len(p) != len(axes):", "if len(p) is not len(axes):"): SMALL_INT,
}

SHIM_INIT = '''"""abduce imported from a mutation-testing copy (tests/mutation.py), not from the editable install."""
import builtins

__path__ = [{root!r}]


class CosmicRayTestingException(Exception):
    """What cosmic-ray's ExceptionReplacer puts in an ``except`` clause: a handler that matches nothing."""


builtins.CosmicRayTestingException = CosmicRayTestingException
'''

PLUGIN = '''"""pytest plugin for mutation runs: hypothesis derandomized, with no example database."""
from hypothesis import settings

settings.register_profile("abduce-mutation", database=None, derandomize=True)
settings.load_profile("abduce-mutation")
'''

RUNNER = r'''"""Runs pytest in forked children of one process that has imported the heavy libraries once.

Started by tests/mutation.py with the copy's root as its working directory; reads one JSON request a
line ({"args": [...], "out": PATH, "timeout": S}) and answers {"rc": N or null (timeout)}. It never
imports abduce or the tests: each child imports them fresh, from the copy, as a new process would.
"""
import importlib, json, os, signal, sys, time

for name in ("numpy", "scipy", "scipy.spatial", "scipy.optimize", "scipy.stats", "torch", "gpytorch",
             "botorch", "pydantic", "zmq", "sqlite3", "pytest", "hypothesis"):
    try:
        importlib.import_module(name)
    except ImportError:
        pass
if any(m == "abduce" or m.startswith(("abduce.", "tests.")) for m in sys.modules):
    sys.exit("the runner imported abduce or the tests: it must not")
print(json.dumps({"ready": os.getpid()}), flush=True)
for line in sys.stdin:
    job = json.loads(line)
    pid = os.fork()
    if pid == 0:
        try:
            os.setsid()
            fd = os.open(job["out"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            sys.stdin.close()
            sys.path.insert(0, os.getcwd())  # as `python -m pytest` from the copy's root would
            sys.argv = ["pytest", *job["args"]]
            import pytest

            rc = pytest.main(job["args"])
            rc = int(rc)
        except SystemExit as exc:
            rc = exc.code if isinstance(exc.code, int) else 3
        except BaseException:
            import traceback

            traceback.print_exc()
            rc = 3
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(rc)
    deadline, rc = time.monotonic() + job["timeout"], None
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            rc = os.waitstatus_to_exitcode(status)
            break
        if time.monotonic() > deadline:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(pid, 0)
            break
        time.sleep(0.02)
    print(json.dumps({"rc": rc}), flush=True)
'''

CANARY_KILL = 'raise RuntimeError("mutation-testing canary: this must fail the tests")'
CANARY_SURVIVE = "_mutation_testing_canary = None"


# ---------------------------------------------------------------------------- the snapshot


def snapshot(source: str) -> dict[str, bytes]:
    """The tree's files, read once: ``{relative path: bytes}``."""
    if source == "head":
        blob = subprocess.run(["git", "-C", str(ROOT), "archive", "HEAD"], check=True, capture_output=True).stdout
        files = {}
        with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
            for member in tar.getmembers():
                if member.isfile():
                    files[member.name] = tar.extractfile(member).read()
        return files
    names = (
        subprocess.run(
            ["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            check=True,
            capture_output=True,
        )
        .stdout.decode()
        .split("\0")
    )
    files = {}
    for name in filter(None, names):
        path = ROOT / name
        if path.is_file() and not path.is_symlink():  # a file deleted in the tree is skipped
            files[name] = path.read_bytes()
    return files


@dataclass
class Copy:
    """One private copy of the tree, with its shim; used by one job at a time."""

    root: Path
    shim: Path

    @classmethod
    def make(cls, base: Path, files: dict[str, bytes]) -> Copy:
        root, shim = base / "repo", base / "shim"
        for name, data in files.items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        (shim / "abduce").mkdir(parents=True)
        (shim / "abduce" / "__init__.py").write_text(SHIM_INIT.format(root=str(root)))
        (shim / "abduce_mutation_plugin.py").write_text(PLUGIN)
        (shim / "abduce_mutation_runner.py").write_text(RUNNER)
        return cls(root, shim)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "HYPOTHESIS_"))}
        env["PYTHONPATH"] = os.pathsep.join([str(self.shim), *filter(None, [os.environ.get("PYTHONPATH")])])
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # one thread a job (and no
            env[name] = "1"  # OpenMP pool for a fork to inherit half-made); the tests set torch to one thread anyway
        return env

    def run(self, args: list[str], timeout: float) -> tuple[int | None, str, float]:
        """``(returncode or None on timeout, output tail, seconds)``; the whole process group goes on timeout."""
        start = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, *args],
            cwd=self.root,
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            out, _ = proc.communicate(timeout=timeout)
            rc = proc.returncode
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
            rc = None
        return rc, out.decode(errors="replace")[-3000:], time.monotonic() - start

    runner: subprocess.Popen | None = None

    def pytest(self, tests: list[str], timeout: float, fork: bool = True) -> tuple[int | None, str, float]:
        """Run the tests: in a child forked from this copy's runner (``fork``), else in a new interpreter."""
        args = ["-x", "-q", "--no-header", "-n", "0", "-p", "no:cacheprovider", "-p", "abduce_mutation_plugin", *tests]
        if not fork:
            return self.run(["-m", "pytest", *args], timeout)
        if self.runner is None or self.runner.poll() is not None:
            self.runner = subprocess.Popen(
                [sys.executable, str(self.shim / "abduce_mutation_runner.py")],
                cwd=self.root,
                env=self.env(),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            ready = self.runner.stdout.readline()
            if "ready" not in ready:
                raise SystemExit(f"the test runner in {self.root} did not start: {ready!r}")
        out_file = self.shim / "last-run.txt"
        start = time.monotonic()
        self.runner.stdin.write(json.dumps({"args": args, "out": str(out_file), "timeout": timeout}) + "\n")
        self.runner.stdin.flush()
        answer = self.runner.stdout.readline()
        if not answer:
            raise SystemExit(f"the test runner in {self.root} died")
        rc = json.loads(answer)["rc"]
        return rc, out_file.read_text(errors="replace")[-3000:], time.monotonic() - start

    def close(self) -> None:
        if self.runner is not None and self.runner.poll() is None:
            self.runner.stdin.close()
            self.runner.wait(30)


# ---------------------------------------------------------------------------- mutants


@dataclass
class Mutant:
    target: str
    operator: str
    occurrence: int
    line: int
    before: str
    after: str
    code: str = field(repr=False)
    outcome: str = ""  # killed, survived, timeout, error
    seconds: float = 0.0
    detail: str = ""

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.target, self.before.strip(), self.after.strip())


def _functions(tree: ast.Module) -> dict[str, ast.FunctionDef]:
    out = {}

    def walk(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = prefix + child.name
                if not isinstance(child, ast.ClassDef):
                    out[name] = child
                walk(child, name + ".")

    walk(tree, "")
    return out


def _body_lines(fn: ast.FunctionDef) -> tuple[int, int]:
    """The lines of a function's body, after its docstring."""
    body = fn.body
    if (
        body
        and isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
    ):
        body = body[1:] or body
    return body[0].lineno, fn.end_lineno


def _annotation_spans(tree: ast.Module) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    spans = []
    for node in ast.walk(tree):
        notes = []
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            a = node.args
            notes = [x.annotation for x in (*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg) if x is not None]
            notes.append(node.returns)
        elif isinstance(node, ast.AnnAssign):
            notes = [node.annotation]
        spans += [((n.lineno, n.col_offset), (n.end_lineno, n.end_col_offset)) for n in notes if n is not None]
    return spans


def mutants(name: str, target: Target, source: str) -> list[Mutant]:
    """Every distinct mutant of the target's lines (annotations excepted)."""
    try:
        from cosmic_ray.ast import ast_nodes, get_ast
        from cosmic_ray.mutating import MutationVisitor
        from cosmic_ray.plugins import get_operator, operator_names
    except ImportError:
        raise SystemExit(
            "cosmic-ray is not installed: pip install -e '.[mutation]' (or 'cosmic-ray>=8.7,<9')"
        ) from None

    tree = ast.parse(source)
    if target.functions:
        fns = _functions(tree)
        missing = [f for f in target.functions if f not in fns]
        if missing:
            raise SystemExit(f"{target.file}: no function {', '.join(missing)} (update TARGETS)")
        ranges = [_body_lines(fns[f]) for f in target.functions]
    else:
        ranges = [(1, len(source.splitlines()))]
    annotations = _annotation_spans(tree)
    future = any(
        isinstance(n, ast.ImportFrom) and n.module == "__future__" and any(a.name == "annotations" for a in n.names)
        for n in tree.body
    )
    lines = source.splitlines()
    nodes = list(ast_nodes(get_ast(source)))  # positions only: the operators do not change what they look at
    out, seen = [], set()
    for op_name in operator_names():
        op_class = get_operator(op_name)
        if op_class.arguments():  # VariableReplacer/VariableInserter: need arguments, not configured
            continue
        op = op_class()
        positions = [(s, e) for node in nodes for s, e in op.mutation_positions(node)]
        for occurrence, (start, end) in enumerate(positions):
            if not any(a <= start[0] <= b for a, b in ranges):
                continue
            if future and any(a <= start and end <= b for a, b in annotations):
                continue
            try:
                code = MutationVisitor.mutate_code(source, op, occurrence)
            except Exception as exc:  # noqa: BLE001 -- an operator that cannot handle this node (e.g. a dotted
                # name in ``except (A, b.C)``): report it, and go on without that mutant
                print(
                    f"{target.file}:{start[0]}: {op_name} cannot mutate here ({type(exc).__name__}); skipped",
                    file=sys.stderr,
                )
                continue
            if code is None or code == source or code in seen:
                continue
            seen.add(code)
            diff = list(difflib.unified_diff(lines, code.splitlines(), n=0, lineterm=""))[2:]
            before = "\n".join(d[1:] for d in diff if d.startswith("-"))
            after = "\n".join(d[1:] for d in diff if d.startswith("+"))
            out.append(Mutant(name, op_name.split("/", 1)[1], occurrence, start[0], before, after, code))
    out.sort(key=lambda m: (m.line, m.operator))
    return out


def plant(source: str, function: str, statement: str) -> str:
    """``source`` with ``statement`` as the first statement of ``function``'s body (after its docstring)."""
    fn = _functions(ast.parse(source))[function]
    first, _ = _body_lines(fn)
    lines = source.splitlines(keepends=True)
    indent = lines[first - 1][: len(lines[first - 1]) - len(lines[first - 1].lstrip())]
    lines.insert(first - 1, f"{indent}{statement}\n")
    return "".join(lines)


# ---------------------------------------------------------------------------- running


def resolve_tests(root: Path, target: Target) -> list[str]:
    tests = []
    for pattern in target.tests:
        matches = sorted(str(p.relative_to(root)) for p in root.glob(pattern))
        tests += [m for m in matches if m not in tests]
    return tests


def outcome(rc: int | None) -> str:
    if rc is None:
        return "timeout"
    if rc == 0:
        return "survived"
    if rc in (1, 2) or rc < 0:  # failed tests; an error while collecting (a mutant that breaks an import); a crash
        return "killed"
    return "error"  # pytest's internal (3), usage (4) or no-tests (5) errors: the harness, not the mutant


def preflight(copy: Copy, name: str, target: Target, tests: list[str], log, fork: bool) -> float:
    """Prove that the tests run the copy's code; returns the baseline run time (for timeouts)."""
    path = copy.root / target.file
    original = path.read_text()
    rc, out, _ = copy.run(["-c", f"import {target.module} as m; print(m.__file__)"], 120)
    where = Path(out.strip().splitlines()[-1]).resolve() if rc == 0 and out.strip() else None
    if where != path.resolve():
        raise SystemExit(f"{name}: tests would import {target.module} from {where or out}, not the copy's {path}")
    for mode in sorted({False, fork}):  # the unmutated tests pass in a new interpreter, and forked from the runner
        rc, out, baseline = copy.pytest(tests, 900, fork=mode)
        if rc != 0:
            raise SystemExit(
                f"{name}: the unmutated tests do not pass ({'forked' if mode else 'spawned'}, rc {rc}):\n{out}"
            )
    try:
        path.write_text(plant(original, target.canary, CANARY_KILL))
        rc_kill, out_kill, _ = copy.pytest(tests, 900, fork=fork)
        path.write_text(plant(original, target.canary, CANARY_SURVIVE))
        rc_live, out_live, _ = copy.pytest(tests, 900, fork=fork)
    finally:
        path.write_text(original)
    if outcome(rc_kill) != "killed":
        raise SystemExit(
            f"{name}: a raise planted in {target.canary} was not caught (rc {rc_kill}): the tests do not "
            f"run the copy's code\n{out_kill}"
        )
    if rc_live != 0:
        raise SystemExit(f"{name}: a no-op planted in {target.canary} failed the tests (rc {rc_live})\n{out_live}")
    log(f"{name}: imports {where}; baseline {baseline:.1f} s; planted raise killed, planted no-op survived")
    return baseline


def run_all(
    copies: list[Copy], work: list[Mutant], tests: dict[str, list[str]], timeouts: dict[str, float], log, fork: bool
) -> None:
    jobs: queue.Queue[Mutant] = queue.Queue()
    for m in work:
        jobs.put(m)
    done, lock, total = [0], threading.Lock(), len(work)

    def worker(copy: Copy) -> None:
        while True:
            try:
                m = jobs.get_nowait()
            except queue.Empty:
                return
            path = copy.root / TARGETS[m.target].file
            original = path.read_text()
            try:
                path.write_text(m.code)
                rc, out, m.seconds = copy.pytest(tests[m.target], timeouts[m.target], fork=fork)
                if rc is None and fork:  # a timeout is confirmed in a new interpreter, never blamed on the fork
                    rc, out, m.seconds = copy.pytest(tests[m.target], timeouts[m.target], fork=False)
            finally:
                path.write_text(original)
            m.outcome = outcome(rc)
            if m.outcome in ("survived", "error"):
                m.detail = out[-1500:]
            else:
                fails = [ln for ln in out.splitlines() if ln.startswith(("FAILED", "ERROR"))]
                m.detail = fails[0][:300] if fails else ""
            with lock:
                done[0] += 1
                log(f"[{done[0]}/{total}] {m.target}:{m.line} {m.operator}: {m.outcome} ({m.seconds:.1f} s)")

    threads = [threading.Thread(target=worker, args=(c,), daemon=True) for c in copies]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


# ---------------------------------------------------------------------------- reporting


def summarize(names: list[str], results: list[Mutant]) -> dict[str, dict]:
    out = {}
    for name in names:
        ms = [m for m in results if m.target == name]
        count = {k: sum(m.outcome == k for m in ms) for k in ("killed", "survived", "timeout", "error")}
        equivalent = [m for m in ms if m.outcome == "survived" and m.key in EQUIVALENT]
        scored = len(ms) - count["error"]
        caught = count["killed"] + count["timeout"]
        out[name] = {
            "total": len(ms),
            **count,
            "equivalent": len(equivalent),
            "rate": caught / scored if scored else float("nan"),
            "rate_without_equivalent": caught / (scored - len(equivalent))
            if scored > len(equivalent)
            else float("nan"),
        }
    return out


def report(names: list[str], results: list[Mutant], summary: dict, meta: dict) -> str:
    lines = [
        "| target | file | mutants | killed | survived | timeout | error | kill rate | kill rate, equivalent "
        "mutants aside |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in names:
        s, t = summary[name], TARGETS[name]
        where = t.file + (f" ({', '.join(t.functions)})" if t.functions else "")
        lines.append(
            f"| {name} | `{where}` | {s['total']} | {s['killed']} | {s['survived']} | {s['timeout']} | "
            f"{s['error']} | {s['rate']:.1%} | {s['rate_without_equivalent']:.1%} |"
        )
    lines += [
        "",
        f"Made by `.venv/bin/python {meta['command']}` on a snapshot of the {meta['source']} at "
        f"{meta['head']}: {len(results)} mutants"
        + (f" (a seeded sample of {meta['sample']} a target)" if meta["sample"] else "")
        + (f", {meta['run']} of them run now" if meta["run"] != len(results) else "")
        + f", {meta['jobs']} jobs, {meta['seconds'] / 60:.1f} min.",
        "",
    ]
    for name in names:
        t = TARGETS[name]
        survivors = [m for m in results if m.target == name and m.outcome in ("survived", "error")]
        lines += [
            f"### {name}: survivors ({len(survivors)})",
            "",
            f"Tests: {', '.join(f'`{x}`' for x in t.tests)}.",
            "",
        ]
        for m in survivors:
            why = EQUIVALENT.get(m.key)
            tag = f" -- **equivalent**: {why}" if why else (" -- **error** (harness)" if m.outcome == "error" else "")
            lines.append(f"- `{t.file}:{m.line}` {m.operator}{tag}")
            lines.append(f"  - `{m.before.strip()}`")
            lines.append(f"  - `{m.after.strip()}`")
        lines.append("")
    return "\n".join(lines)


BEGIN, END = "<!-- mutation-report: generated by tests/mutation.py -->", "<!-- /mutation-report -->"


def write_report(path: Path, text: str) -> None:
    """Put ``text`` between the markers in ``path`` (the rest of the file is kept), or write a new file."""
    block = f"{BEGIN}\n\n{text.rstrip()}\n\n{END}"
    old = path.read_text() if path.exists() else ""
    if BEGIN in old and END in old:
        head, rest = old.split(BEGIN, 1)
        path.write_text(head + block + rest.split(END, 1)[1])
    else:
        path.write_text((old.rstrip() + "\n\n" if old.strip() else "") + block + "\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--targets", default=",".join(TARGETS), help=f"comma-separated, of {', '.join(TARGETS)}")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="parallel test runs (one tree copy each)")
    p.add_argument(
        "--source",
        choices=["worktree", "head"],
        default="worktree",
        help="snapshot the working tree as it is on disk (default) or the last commit",
    )
    p.add_argument("--only", help="run only mutants whose 'target:line operator' matches this glob")
    p.add_argument(
        "--rerun",
        type=Path,
        help="run only the survivors recorded in this --json file; the report keeps that file's other outcomes",
    )
    p.add_argument("--sample", type=int, help="run a fixed random sample of this many mutants per target (seeded)")
    p.add_argument("--markdown", type=Path, help="write the report here")
    p.add_argument("--json", type=Path, help="write every mutant's outcome here")
    p.add_argument("--list", action="store_true", help="list the mutants and exit")
    p.add_argument("--keep", action="store_true", help="keep the temporary copies")
    p.add_argument(
        "--spawn",
        action="store_true",
        help="run each mutant's tests in a new interpreter (slower: ~3 s more a mutant) instead of forking "
        "them from a process that has imported torch, numpy, scipy, pydantic... once",
    )
    args = p.parse_args(argv)
    names = [n.strip() for n in args.targets.split(",") if n.strip()]
    unknown = [n for n in names if n not in TARGETS]
    if unknown:
        p.error(f"unknown target(s) {unknown}; known: {list(TARGETS)}")
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731

    started = time.monotonic()
    files = snapshot(args.source)
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    work: list[Mutant] = []
    for name in names:
        t = TARGETS[name]
        if t.file not in files:
            raise SystemExit(f"{name}: {t.file} is not in the snapshot")
        work += mutants(name, t, files[t.file].decode())
    every = list(work)
    if args.rerun:
        previous = {
            (r["target"], r["before"].strip(), r["after"].strip(), r["operator"]): r
            for r in json.loads(args.rerun.read_text())["mutants"]
        }
        for m in every:
            r = previous.get((*m.key, m.operator))
            if r is not None:
                m.outcome, m.seconds, m.detail = r["outcome"], r["seconds"], r["detail"]
        work = [m for m in every if m.outcome in ("", "survived", "error")]  # new mutants, and the survivors
    if args.sample:
        import random

        rng, picked = random.Random(0), []
        for name in names:
            ms = [m for m in work if m.target == name]
            picked += sorted(rng.sample(ms, min(args.sample, len(ms))), key=lambda m: (m.line, m.operator))
        work = every = picked
    if args.only:
        work = [m for m in work if fnmatch.fnmatch(f"{m.target}:{m.line} {m.operator}", args.only)]
        if not args.rerun:
            every = work
    if args.list:
        for m in work:
            print(f"{m.target}:{m.line} {m.operator}\n  - {m.before.strip()}\n  + {m.after.strip()}")
        print(f"{len(work)} mutants")
        return 0

    base = Path(tempfile.mkdtemp(prefix="abduce-mutation-"))
    try:
        jobs = max(1, min(args.jobs, len(work) or 1))
        copies = [Copy.make(base / f"copy{i}", files) for i in range(jobs)]
        tests, timeouts, skipped = {}, {}, {}
        for name in names:
            tests[name] = resolve_tests(copies[0].root, TARGETS[name])
            missing = [x for x in TARGETS[name].tests if not any(fnmatch.fnmatch(t, x) for t in tests[name])]
            if missing:
                log(f"{name}: not in the snapshot, so not run: {', '.join(missing)}")
            try:
                baseline = preflight(copies[0], name, TARGETS[name], tests[name], log, fork=not args.spawn)
            except SystemExit as exc:  # e.g. the snapshot caught someone's half-made change: skip this target, say so
                log(f"SKIPPED {exc}")
                skipped[name] = str(exc).splitlines()[0]
                continue
            timeouts[name] = 4 * baseline + 60
            for c in copies[1:]:  # each copy imports its own tree too
                rc, out, _ = c.run(["-c", f"import {TARGETS[name].module} as m; print(m.__file__)"], 120)
                if rc != 0 or Path(out.strip().splitlines()[-1]).resolve() != (c.root / TARGETS[name].file).resolve():
                    raise SystemExit(f"{name}: copy {c.root} does not import its own {TARGETS[name].file}: {out}")
        names = [n for n in names if n not in skipped]
        work = [m for m in work if m.target in names]
        every = [m for m in every if m.target in names]
        log(f"{len(work)} mutants over {', '.join(names)}; {jobs} jobs")
        run_all(copies, work, tests, timeouts, log, fork=not args.spawn)
    finally:
        for c in locals().get("copies", []):
            c.close()
        if args.keep:
            log(f"copies kept in {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)

    meta = {
        "source": args.source,
        "head": head,
        "jobs": jobs,
        "seconds": time.monotonic() - started,
        "command": " ".join(["tests/mutation.py", *(argv if argv is not None else sys.argv[1:])]),
        "run": len(work),
        "sample": args.sample,
    }
    summary = summarize(names, every)
    text = report(names, every, summary, meta)
    for name, why in skipped.items():
        text += f"\n**{name} was not run**: {why}\n"
    print(text)
    if args.markdown:
        write_report(args.markdown, text)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "meta": meta,
                    "summary": summary,
                    "mutants": [{k: v for k, v in asdict(m).items() if k != "code"} for m in every],
                },
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
