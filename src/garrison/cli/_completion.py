"""``garrison completion bash|zsh``: a shell completion script, generated from the parsers.

The script is written from :data:`~garrison.cli.COMMANDS` and each command's
argparse parser when it is printed, so a new command, option or mode name is
completed without anyone editing a script. It completes command names,
options (global ones before or after the command), the choices of
positionals (``probe ready``, ``mode set sqlite-only``) and of options
(``--log-format json``), and file or directory names after options that take
a path. It runs nothing of garrison's at completion time: the shell only
reads the tables written here.

Reading a parser's actions means reading argparse's ``_actions`` list (what
shtab and argcomplete read too); that reach stays in :func:`_spec`.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from garrison.cli._common import EXIT_OK, emit

__all__ = ["register", "script"]

_SHELLS = ("bash", "zsh")

_DESCRIPTION = """\
Print a completion script for bash or zsh on stdout. It completes command
names, options (global ones before or after the command), mode and probe
names, and file names after options that take a path.

examples:
  # bash: for this shell, then for every new one
  source <(garrison completion bash)
  garrison completion bash > ~/.local/share/bash-completion/completions/garrison

  # zsh: a directory on $fpath, before compinit runs
  garrison completion zsh > "${fpath[1]}/_garrison"
"""


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``completion`` command to the ``garrison`` CLI."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "completion",
        help="print a bash or zsh completion script",
        description=_DESCRIPTION,
    )
    parser.add_argument("shell", choices=_SHELLS, help="the shell: bash or zsh")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """``garrison completion SHELL``; returns the exit status."""
    text = script(args.shell)
    if args.json:
        emit({"shell": args.shell, "script": text})
    else:
        sys.stdout.write(text)
    return EXIT_OK


@dataclass
class _Option:
    names: list[str]
    help: str
    takes_value: bool
    choices: list[str]
    value: str  # "file", "dir" or "" (anything)


@dataclass
class _Command:
    name: str
    help: str
    options: list[_Option] = field(default_factory=list)
    positionals: list[tuple[str, list[str]]] = field(default_factory=list)  # (name, choices)


def _spec() -> tuple[list[_Option], list[_Command]]:
    """The top-level options and every command, read from the parsers."""
    from garrison.cli import COMMANDS, build_parser  # noqa: PLC0415 - the package imports us

    top, commands = build_parser("*")
    result: list[_Command] = []
    for name, parser in commands.items():
        command = _Command(name, COMMANDS[name][1] if name in COMMANDS else "")
        for action in parser._actions:
            if action.help == argparse.SUPPRESS:
                continue
            if action.option_strings:
                command.options.append(_option(action))
            else:
                choices = [str(c) for c in action.choices or ()]
                command.positionals.append((action.dest, choices))
        result.append(command)
    top_options = [
        _option(a) for a in top._actions if a.option_strings and a.help != argparse.SUPPRESS
    ]
    return top_options, result


def _option(action: argparse.Action) -> _Option:
    takes_value = action.nargs != 0
    value = ""
    if action.type is Path or action.dest == "file":
        value = "dir" if action.dest == "data_dir" else "file"
    return _Option(
        names=list(action.option_strings),
        help=_first_line(action.help or ""),
        takes_value=takes_value,
        choices=[str(c) for c in action.choices or ()],
        value=value,
    )


def _first_line(text: str) -> str:
    return " ".join(text.replace("%%", "%").split())


def script(shell: str) -> str:
    """The completion script for ``shell`` (``"bash"`` or ``"zsh"``)."""
    top, commands = _spec()
    if shell == "bash":
        return _bash(top, commands)
    if shell == "zsh":
        return _zsh(top, commands)
    raise ValueError(f"no completion for {shell!r}; expected one of {', '.join(_SHELLS)}")


def _words(items: list[str]) -> str:
    return " ".join(items)


def _bash(top: list[_Option], commands: list[_Command]) -> str:
    valued = sorted({n for c in commands for o in c.options if o.takes_value for n in o.names})
    valued_top = sorted({n for o in top if o.takes_value for n in o.names})
    by_action: dict[str, list[str]] = {}  # the shell code -> the options it completes
    for option in [*top, *(o for c in commands for o in c.options)]:
        if not option.takes_value:
            continue
        if option.choices:
            action = f'COMPREPLY=($(compgen -W "{_words(option.choices)}" -- "$cur"))'
        elif option.value == "dir":
            action = 'COMPREPLY=($(compgen -d -- "$cur"))'
        elif option.value == "file":
            action = 'COMPREPLY=($(compgen -f -- "$cur"))'
        else:
            action = "COMPREPLY=()"  # a number, a URL, a reason: nothing to offer
        names = by_action.setdefault(action, [])
        names.extend(n for n in option.names if n not in names)
    value_cases = [
        f"        {'|'.join(names)}) {action}; return ;;" for action, names in by_action.items()
    ]
    option_cases: list[str] = []
    position_cases: list[str] = []
    for command in commands:
        options = sorted({n for o in command.options for n in o.names})
        option_cases.append(f'        {command.name}) options="{_words(options)}" ;;')
        for index, (_, choices) in enumerate(command.positionals):
            if choices:
                position_cases.append(
                    f'        {command.name}:{index}) words="{_words(choices)}" ;;'
                )
    names = [c.name for c in commands]
    top_names = sorted({n for o in top for n in o.names})
    lines = [
        "# bash completion for garrison (written by 'garrison completion bash')",
        "_garrison() {",
        '    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}"',
        '    local command="" position=0 i word options="" words=""',
        "    COMPREPLY=()",
        '    case "$prev" in',
        *value_cases,
        "    esac",
        "    for ((i = 1; i < COMP_CWORD; i++)); do",
        '        word="${COMP_WORDS[i]}"',
        '        case "$word" in',
        f"            {'|'.join(sorted(set(valued) | set(valued_top)))}) i=$((i + 1)) ;;",
        "            -*) ;;",
        '            *) if [[ -z "$command" ]]; then command="$word";',
        "               else position=$((position + 1)); fi ;;",
        "        esac",
        "    done",
        '    if [[ -z "$command" ]]; then',
        f'        if [[ "$cur" == -* ]]; then words="{_words(top_names)}"; fi',
        f'        if [[ "$cur" != -* ]]; then words="{_words(names)}"; fi',
        '        COMPREPLY=($(compgen -W "$words" -- "$cur"))',
        "        return",
        "    fi",
        '    case "$command" in',
        *option_cases,
        "    esac",
        '    case "$command:$position" in',
        *position_cases,
        "    esac",
        '    if [[ "$cur" == -* ]]; then words="$options"; fi',
        '    COMPREPLY=($(compgen -W "$words" -- "$cur"))',
        "}",
        "complete -o default -F _garrison garrison",
        "",
    ]
    return "\n".join(lines)


def _zsh_quote(text: str) -> str:
    """``text`` for inside single quotes, its brackets escaped (they end a description)."""
    return text.replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]").replace("'", "'\\''")


def _zsh_option(option: _Option) -> str:
    help_text = _zsh_quote(option.help)
    if len(option.names) > 1:
        names = "{" + ",".join(option.names) + "}"
        head = f"'({' '.join(option.names)})'{names}'[{help_text}]"
    else:
        head = f"'{option.names[0]}[{help_text}]"
    if not option.takes_value:
        return head + "'"
    if option.choices:
        action = f"({' '.join(option.choices)})"
    elif option.value == "dir":
        action = "_directories"
    elif option.value == "file":
        action = "_files"
    else:
        action = " "
    return f"{head}:{option.names[-1].lstrip('-')}:{action}'"


def _zsh(top: list[_Option], commands: list[_Command]) -> str:
    described = [f"        '{c.name}:{_zsh_quote(c.help)}'" for c in commands]
    cases: list[str] = []
    for command in commands:
        specs = [_zsh_option(o) for o in command.options]
        for index, (name, choices) in enumerate(command.positionals, start=1):
            action = "_files" if name == "path" else " "  # a key, a prefix: no list
            if choices:
                action = f"({' '.join(choices)})"
            specs.append(f"'{index}:{name}:{action}'")
        body = " \\\n                ".join(specs)
        cases.append(f"            {command.name})\n                _arguments -s {body} ;;")
    top_specs = " \\\n        ".join(_zsh_option(o) for o in top)
    lines = [
        "#compdef garrison",
        "# zsh completion for garrison (written by 'garrison completion zsh')",
        "_garrison() {",
        "    local context state state_descr line",
        "    typeset -A opt_args",
        "    local -a commands",
        "    commands=(",
        *described,
        "    )",
        f"    _arguments -C {top_specs} \\",
        "        '1:command:->command' \\",
        "        '*::argument:->argument'",
        "    case $state in",
        "        command) _describe -t commands 'garrison command' commands ;;",
        "        argument)",
        "            case $words[1] in",
        *cases,
        "            esac ;;",
        "    esac",
        "}",
        'if [[ "$funcstack[1]" == _garrison ]]; then',
        '    _garrison "$@"',
        "else",
        "    compdef _garrison garrison",
        "fi",
        "",
    ]
    return "\n".join(lines)
