"""The seven planted bugs of the README ("Tests"): each planted in a private copy of the tree (never in
the checkout), the fast-tier test files that should catch it run against the copy (a shim package puts
the copy's modules ahead of the editable install; checked before each run), caught or missed printed.

    python tests/planted_bugs.py ["fsync dropped" ...]
"""

import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUGS = [
    (
        "fsync dropped",
        "controller/journal/store.py",
        "            os.fsync(self._wal_fd())",
        "            self._wal_fd()",
        ["tests/controller/journal/test_journal.py", "tests/controller/journal/test_journal_mutants.py"],
    ),
    (
        "HMAC comparison skipped",
        "instruments/protocol/codec.py",
        "if not hmac.compare_digest(expected, signature):",
        "if False:",
        ["tests/instruments/test_codec_fuzz.py", "tests/instruments/test_codec.py"],
    ),
    (
        "autocommit dropped",
        "controller/journal/store.py",
        "conn = sqlite3.connect(path, isolation_level=None)",
        "conn = sqlite3.connect(path)",
        ["tests/controller/journal/test_journal.py"],
    ),
    (
        "Box-Hill sign flipped",
        "controller/decide/acquisition.py",
        "score = score + weights[i] * weights[j] * j_ij",
        "score = score - weights[i] * weights[j] * j_ij",
        ["tests/controller/decide/test_acquisition.py"],
    ),
    (
        "duplicate request id accepted",
        "controller/core/campaign.py",
        'raise MeasurementRejected(rid, "duplicate", "this request was already told")',
        "pass",
        ["tests/controller/core/test_tell_validation.py", "tests/controller/core/test_campaign.py"],
    ),
    (
        "agent limit check skipped",
        "instruments/agent.py",
        '        """The agent\'s own safety check: dimension, axis limits, candidate grid."""\n',
        '        """The agent\'s own safety check: dimension, axis limits, candidate grid."""\n        return None\n',
        ["tests/instruments/test_agent_limits.py", "tests/instruments/test_link_agent.py"],
    ),
    (
        "agent result cache ignored",
        "instruments/agent.py",
        "        done = self._results.get(m.request_id)\n        if done is not None:  # a retry",
        "        done = None\n        if done is not None:  # a retry",
        ["tests/instruments/test_agent_limits.py", "tests/instruments/test_link_agent.py"],
    ),
]


def copy():
    d = tempfile.mkdtemp(prefix="plant-", dir=None)
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True
    ).stdout.split()
    for f in files:
        os.makedirs(os.path.join(d, os.path.dirname(f)), exist_ok=True)
        if os.path.isfile(os.path.join(ROOT, f)):
            shutil.copy2(os.path.join(ROOT, f), os.path.join(d, f))
    shim = os.path.join(d, "_shim", "abduce")
    os.makedirs(shim)
    open(os.path.join(shim, "__init__.py"), "w").write(f"__path__ = [{d!r}]\n")
    return d


which = sys.argv[1:]
missed = []
for name, path, old, new, tests in BUGS:
    if which and name not in which:
        continue
    d = copy()
    p = os.path.join(d, path)
    s = open(p).read()
    if old is None:
        print(f"{name}: edit by hand in {p}", flush=True)
        continue
    assert old in s, (name, old)
    open(p, "w").write(s.replace(old, new))
    env = {**os.environ, "PYTHONPATH": os.path.join(d, "_shim") + ":" + d, "PYTHONDONTWRITEBYTECODE": "1"}
    probe = subprocess.run(
        [f"{ROOT}/.venv/bin/python", "-c", "import abduce.controller.journal.store as j; print(j.__file__)"],
        cwd=d,
        env=env,
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert probe.startswith(d), probe  # the copy, not the checkout, is what the tests import
    r = subprocess.run(
        [f"{ROOT}/.venv/bin/python", "-m", "pytest", "-q", "-x", "-n", "0", "-p", "no:cacheprovider", *tests],
        cwd=d,
        env=env,
        capture_output=True,
        text=True,
    )
    tail = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else r.stderr[-300:]
    print(f"{name}: {'CAUGHT' if r.returncode != 0 else 'MISSED'} ({tail})", flush=True)
    if r.returncode == 0:
        missed.append(name)
    shutil.rmtree(d)
sys.exit(1 if missed else 0)
