"""`regaze <command>`: thin entry point. Parses arguments, then calls the library functions.

Sub-commands live in `regaze/commands/`; this dict is the only registry.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from regaze import __version__
from regaze.errors import RegazeError

COMMANDS = {
    "data": "regaze.commands.data",
    "synth": "regaze.commands.synth",
    "model": "regaze.commands.model",
    "train": "regaze.commands.train",
    "estimator": "regaze.commands.estimator",
    "evaluate": "regaze.commands.evaluate",
    "augment": "regaze.commands.augment",
    "redirect": "regaze.commands.redirect",
    "normalize": "regaze.commands.normalize",
    "demo": "regaze.commands.demo",
    "export": "regaze.commands.export",
    "app": "regaze.commands.app",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="regaze",
        description="Gaze and head redirection for gaze-estimation datasets (patent CN118116053A).",
        epilog="Run `regaze COMMAND --help` for each command. Angles on the command line are in degrees.",
    )
    parser.add_argument("--version", action="version", version=f"regaze {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if e.name == module_name:  # command not built yet
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        result = args.func(args)
    except (RegazeError, FileNotFoundError) as e:
        print(f"regaze {args.command}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
