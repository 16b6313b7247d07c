"""The `gradzoo` subcommands, one module each; `add_commands` registers them with argparse.

A command's module defines `add(subparsers)`, which adds its parser and sets
`func` (and `needs_keras=False` for commands that never touch Keras).
"""

from __future__ import annotations

from gradzoo.benchmarks.commands import (
    doctor_command,
    list_command,
    pretrained_command,
    regenerate_command,
    report_command,
    run_command,
)

COMMANDS = (list_command, run_command, report_command, regenerate_command, pretrained_command, doctor_command)


def add_commands(subparsers) -> None:
    for module in COMMANDS:
        module.add(subparsers)

