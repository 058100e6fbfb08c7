"""The `pose-perception` command: one entry point whose sub-commands live in small modules of this package.

Each sub-command module exposes `register(subparsers)`; modules whose dependencies are missing are skipped.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# Module name -> sub-command it registers (a module may register several).
SUBCOMMAND_MODULES = (
    "pose_perception.cli.human",
    "pose_perception.cli.objects",
    "pose_perception.evaluation.cli.radar",
    "pose_perception.cli.up",
    "pose_perception.evaluation.cli.bench",
    "pose_perception.evaluation.cli.eval",
    "pose_perception.evaluation.cli.demo",
    "pose_perception.cli.bag",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pose-perception", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True)
    for module_name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue  # sub-command not part of this build
            if ".evaluation." in module_name and not (exc.name or "pose_perception").startswith("pose_perception"):
                # An evaluation command on a runtime-only install: say what is missing when it is called.
                register_missing(subparsers, module_name.rsplit(".", 1)[1], exc.name)
                continue
            raise
        module.register(subparsers)
    return parser


def register_missing(subparsers, command: str, missing: str | None) -> None:
    """A sub-command whose module needs a third-party package that is not installed (the evaluation commands
    need setup.py's `eval` extra): it parses anything and exits with what to install."""
    # prefix_chars: no options, so that anything after the command parses (and the message is printed)
    parser = subparsers.add_parser(command, help=f"(not installed: needs {missing})", add_help=False, prefix_chars="\0")
    message = f"`{parser.prog}` needs {missing}, part of the evaluation extra: pip install 'pose_perception[eval]'"
    parser.add_argument("rest", nargs=argparse.REMAINDER)

    def fail(args) -> int:
        print(message, file=sys.stderr)
        return 2

    parser.set_defaults(func=fail)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # As the command only (argv None): a caller's process (tests) keeps its stderr. up / demo start node processes,
    # which filter their own output.
    if argv is None and args.command not in ("up", "demo"):
        from pose_perception.core.quiet import filter_native_stderr

        filter_native_stderr()
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
