"""Sub-command groups (`bench`, `eval`) whose members live in separate modules, one per area.

Each member module exposes `add_arguments(parser)` and `run(args) -> int`.
"""

from __future__ import annotations

import argparse
import importlib


def register_group(subparsers, group: str, help_text: str, members: dict[str, str]) -> None:
    parser = subparsers.add_parser(group, help=help_text)
    members_parsers = parser.add_subparsers(dest=f"{group}_target", required=True)
    for name, module_name in members.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue  # member not part of this build
            if ".evaluation." in module_name and not (exc.name or "pose_perception").startswith("pose_perception"):
                from pose_perception.cli.main import register_missing

                register_missing(members_parsers, name, exc.name)  # bench / eval members need the `eval` extra
                continue
            raise
        sub = members_parsers.add_parser(name, help=(module.__doc__ or "").strip().splitlines()[0])
        module.add_arguments(sub)
        sub.set_defaults(func=module.run)


def add_common_output(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", metavar="OUT.json", help="also write the results as JSON")
