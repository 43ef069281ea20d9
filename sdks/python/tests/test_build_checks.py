"""plexspaces-py build reports mistakes in the user's file with its line, before any wasm work."""
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

CASES = [
    ("syntax", "from plexspaces import actor\n@actor\nclass A:\n    def f(self:\n", ":4:", "was never closed"),
    ("noclass", "x = 1\n", "error: no actor class", "@actor"),
    (
        "duplicate",
        "from plexspaces import actor, handler\n@actor\nclass A:\n    @handler('x')\n    def a(self): pass\n\n    @handler('x')\n    def b(self): pass\n",
        ":7:",
        "two handlers are named 'x' (the first at line 4)",
    ),
    (
        "mutable",
        "from plexspaces import actor, state\n@actor\nclass A:\n    items: list = state(default=[])\n",
        ":4:",
        "use state(default_factory=list)",
    ),
    (
        "unknown_argument",
        "from plexspaces import actor, handler\n@actor\nclass A:\n    @handler('x', retries=3)\n    def a(self): pass\n",
        ":4:",
        "unknown argument(s) retries",
    ),
    (
        "unknown_class_argument",
        "from plexspaces import actor\n@actor(facet=['metrics'])\nclass A:\n    pass\n",
        ":2:",
        "unknown argument(s) facet",
    ),
    ("raises", "import json\nraise RuntimeError('boom')\n", ":2:", "RuntimeError: boom"),
]


@pytest.mark.parametrize("name,source,where,says", CASES, ids=[case[0] for case in CASES])
def test_mistakes_are_reported_with_file_and_line(tmp_path, name, source, where, says):
    path = tmp_path / f"bad_{name}.py"
    path.write_text(source)
    out = tmp_path / "never.wasm"
    completed = subprocess.run(
        [sys.executable, "-m", "plexspaces.build", "build", str(path), "-o", str(out)],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"},
    )
    assert completed.returncode == 1, completed.stderr
    assert f"bad_{name}.py" in completed.stderr
    assert where in completed.stderr, completed.stderr
    assert says in completed.stderr, completed.stderr
    assert not out.exists()


def test_the_bundled_wit_is_the_projects():
    bundled = (SRC / "plexspaces" / "wit" / "plexspaces.wit").read_text()
    project = (Path(__file__).resolve().parents[3] / "wit" / "plexspaces.wit").read_text()
    assert bundled == project, "copy wit/plexspaces.wit into sdks/python/src/plexspaces/wit/"


def test_a_relative_output_lands_beside_the_caller(tmp_path):
    """componentize-py works in a directory of its own: `-o counter.wasm` must still mean the
    caller's directory (a user building as the README shows)."""
    source = tmp_path / "tiny.py"
    source.write_text("from plexspaces import actor, handler\n@actor\nclass Tiny:\n    @handler('x')\n    def x(self) -> dict:\n        return {}\n")
    completed = subprocess.run(
        [sys.executable, "-m", "plexspaces.build", "build", "-q", "tiny.py", "-o", "out/tiny.wasm"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(SRC), "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin"},
    )
    assert completed.returncode == 0, completed.stderr
    built = tmp_path / "out" / "tiny.wasm"
    assert built.read_bytes()[:4] == b"\0asm"
