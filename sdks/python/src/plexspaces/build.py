"""`plexspaces-py build FILE.py -o FILE.wasm`: checks the actor module, then builds it into a
WebAssembly component of the PlexSpaces world with componentize-py.

Mistakes in the user's code (a syntax error, no actor class, two handlers with one name, a
mutable `default=`, an unknown decorator argument) are reported as `file:line: error: ...`
before any WebAssembly work starts.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

from . import _model

WORLD = "actor-module"
PACKAGE_DIR = Path(__file__).resolve().parent
WIT_DIR = PACKAGE_DIR / "wit"

# The SDK files a component needs (the build tool and the testing host stay out of it).
GUEST_FILES = ("__init__.py", "_model.py", "_dispatch.py", "host.py", "_guest.py")


class CheckFailed(Exception):
    """The module has a mistake; the message says where."""


def _user_frame(error: BaseException, path: Path) -> int | None:
    for frame in reversed(traceback.extract_tb(error.__traceback__)):
        if Path(frame.filename).resolve() == path:
            return frame.lineno
    return None


def check(path: Path) -> list[str]:
    """Imports the module under CPython and returns the names of its actor classes."""
    try:
        source = path.read_text(encoding="utf-8")
    except OSError as error:
        raise CheckFailed(f"{path}: error: cannot read the file: {error.strerror}") from None
    try:
        compile(source, str(path), "exec")
    except SyntaxError as error:
        column = f":{error.offset}" if error.offset else ""
        raise CheckFailed(f"{path}:{error.lineno}{column}: error: {error.msg}") from None
    module_name = path.stem
    if not module_name.isidentifier():
        raise CheckFailed(
            f"{path}: error: the file name must be a Python module name (letters, digits, _)"
        )
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise CheckFailed(f"{path}: error: cannot load the module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    except _model.BuildError as error:
        where = f"{error.filename}:{error.lineno}" if error.filename else str(path)
        raise CheckFailed(f"{where}: error: {error.message}") from None
    except Exception as error:  # noqa: BLE001 - the user's module failed to import
        line = _user_frame(error, path.resolve())
        where = f"{path}:{line}" if line else str(path)
        raise CheckFailed(
            f"{where}: error: importing the module raised {type(error).__name__}: {error}"
        ) from None
    finally:
        sys.path.remove(str(path.parent))
    classes = _model.classes_of(module_name)
    if not classes:
        raise CheckFailed(
            f"{path}: error: no actor class: decorate a class with @actor, @event_actor, "
            "@fsm_actor or @workflow_actor"
        )
    return [cls.__name__ for cls in classes]


def _componentize() -> list[str]:
    """The componentize-py command: the one installed beside this Python, else on PATH."""
    beside = Path(sys.executable).parent / "componentize-py"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("componentize-py")
    if found:
        return [found]
    return [sys.executable, "-m", "componentize_py"]


def build(path: Path, output: Path, quiet: bool = False) -> None:
    """Checks `path`, then writes the component to `output`."""
    # componentize-py runs in a work directory of its own: a relative output is the caller's.
    output = output.resolve()
    classes = check(path)
    if not quiet:
        print(f"{path}: {len(classes)} actor class(es): {', '.join(classes)}", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="plexspaces-build-") as work:
        app = Path(work)
        sdk = app / "plexspaces"
        sdk.mkdir()
        for name in GUEST_FILES:
            shutil.copy(PACKAGE_DIR / name, sdk / name)
        shutil.copy(path, app / path.name)
        (app / "plexspaces_app.py").write_text(
            f"import {path.stem}\n"
            "from plexspaces import _guest\n"
            f"_guest.serve({path.stem!r})\n"
            "Guest = _guest.Guest\n",
            encoding="utf-8",
        )
        output.parent.mkdir(parents=True, exist_ok=True)
        command = [
            *_componentize(),
            "-d",
            str(WIT_DIR),
            "-w",
            WORLD,
            "componentize",
            "plexspaces_app",
            "-p",
            str(app),
            "-o",
            str(output),
        ]
        completed = subprocess.run(command, capture_output=True, text=True, cwd=work)
        if completed.returncode != 0:
            sys.stderr.write(completed.stdout)
            sys.stderr.write(completed.stderr)
            raise CheckFailed(f"{path}: error: componentize-py failed (exit {completed.returncode})")
    if not quiet:
        size = output.stat().st_size
        print(f"wrote {output} ({size / 1e6:.1f} MB)", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="plexspaces-py", description="Build Python actors into PlexSpaces WebAssembly components"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    build_command = commands.add_parser("build", help="build FILE.py into a component")
    build_command.add_argument("file", type=Path)
    build_command.add_argument("-o", "--output", type=Path, help="default: FILE.wasm beside FILE.py")
    build_command.add_argument("-q", "--quiet", action="store_true")
    check_command = commands.add_parser("check", help="check FILE.py without building")
    check_command.add_argument("file", type=Path)
    commands.add_parser("wit", help="print the WIT world this SDK builds against")
    args = parser.parse_args(argv)
    try:
        if args.command == "wit":
            sys.stdout.write((WIT_DIR / "plexspaces.wit").read_text(encoding="utf-8"))
        elif args.command == "check":
            classes = check(args.file)
            print(f"{args.file}: ok: {', '.join(classes)}")
        else:
            output = args.output or args.file.with_suffix(".wasm")
            build(args.file, output, args.quiet)
    except CheckFailed as error:
        print(error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
