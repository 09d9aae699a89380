"""The CLI's fast path: the hot container commands, parsed without importing click.

Importing click costs more than the daemon takes to run a container (see README,
Performance). The commands are still defined once, with click, in cli/containers.py
and cli/exec.py; `fast_spec.py` is generated from those definitions
(`python -m minictr.cli.fast --write-spec`, checked by tests/unit/test_fast.py), and
this parser reads argv the way click does for the plain forms: options known to the
command, flags, `--opt=value`, `-abc` clusters, `--`. Anything else — an unknown
option, `--help`, a missing argument, a value click would reject — returns None and
click parses the whole command line itself, with its own messages. The parsed
arguments go to the same functions (cli/actions.py) that the click commands call.
"""

import os
import sys

_TRUE, _FALSE = ("true", "1", "t"), ("false", "0", "f")


def dispatch(argv):
    """Run a hot command if argv is plain enough; returns whether it did."""
    parsed = parse(argv)
    if parsed is None:
        return False
    command, host, kwargs = parsed
    from minictr.cli import actions
    from minictr.cli.context import Context

    getattr(actions, _ACTIONS[command])(Context(host), **kwargs)
    return True


_ACTIONS = {"run": "run", "create": "create", "start": "start", "stop": "stop", "restart": "restart",
            "kill": "kill", "rm": "rm", "exec": "exec_", "ps": "ps", "wait": "wait"}


def parse(argv):
    """(command, host, keyword arguments) as click would pass them, or None."""
    from minictr.cli.fast_spec import SPEC

    host, i = None, 0
    while i < len(argv) and argv[i].startswith("-"):
        name, eq, value = argv[i].partition("=")
        if name not in ("-H", "--host"):
            return None
        if not eq:
            if i + 1 >= len(argv):
                return None
            value, i = argv[i + 1], i + 1
        host, i = value, i + 1
    if i >= len(argv) or argv[i] not in SPEC:
        return None
    if host is None:
        host = os.environ.get("MINICTR_HOST") or None
    kwargs = _parse_command(SPEC[argv[i]], argv[i + 1:])
    return None if kwargs is None else (argv[i], host, kwargs)


def _parse_command(spec, args):
    by_opt = {opt: option for option in spec["options"] for opt in option["opts"] + option["secondary"]}
    values = {option["name"]: (() if option["multiple"] else option["default"]) for option in spec["options"]}
    positionals, i = [], 0
    while i < len(args):
        token = args[i]
        if token == "--":
            positionals += args[i + 1:]
            break
        if not token.startswith("-") or token == "-":
            positionals.append(token)
            if not spec["interspersed"]:
                positionals += args[i + 1:]
                break
            i += 1
            continue
        taken = _parse_long(token, args, i, by_opt, values, spec) if token.startswith("--") else \
            _parse_short(token, args, i, by_opt, values, spec)
        if taken is None:
            return None
        i += taken
    return _assign(spec["arguments"], positionals, values)


def _parse_long(token, args, i, by_opt, values, spec):
    """Consume `--name[=value] [value]`; returns how many tokens it took, or None."""
    name, eq, value = token.partition("=")
    option = by_opt.get(name)
    if option is None:
        return None
    if option["flag"]:
        if not eq:
            return 1 if _set(option, values, name not in option["secondary"]) else None
        if not spec["docker"] or value.lower() not in _TRUE + _FALSE or name in option["secondary"]:
            return None
        return 1 if _set(option, values, value.lower() in _TRUE) else None
    if eq:
        return 1 if _set(option, values, value) else None
    if i + 1 >= len(args):
        return None
    return 2 if _set(option, values, args[i + 1]) else None


def _parse_short(token, args, i, by_opt, values, spec):
    """Consume a cluster such as `-it`, `-eK=V`, `-e K=V`, or Docker's `-i=false`, `-e=K=V`."""
    j = 1
    while j < len(token):
        option = by_opt.get("-" + token[j])
        if option is None:
            return None
        rest = token[j + 1:]
        if option["flag"]:
            if rest.startswith("="):
                value = rest[1:].lower()
                if not spec["docker"] or value not in _TRUE + _FALSE:
                    return None
                return 1 if _set(option, values, value in _TRUE) else None
            if not _set(option, values, True):
                return None
            j += 1
            continue
        if rest:
            value = rest[1:] if rest.startswith("=") and spec["docker"] else rest
            return 1 if _set(option, values, value) else None
        if i + 1 >= len(args):
            return None
        return 2 if _set(option, values, args[i + 1]) else None
    return 1


def _set(option, values, value):
    """Store a converted value; False when click would refuse it (then click reports it)."""
    if option["type"] == "INT" and not isinstance(value, bool):
        try:
            value = int(value)
        except ValueError:
            return False
    elif option["type"].startswith("CHOICE:") and value not in option["type"][7:].split("|"):
        return False
    if option["multiple"]:
        values[option["name"]] += (value,)
    else:
        values[option["name"]] = value
    return True


def _assign(arguments, positionals, values):
    for argument in arguments:
        if argument["nargs"] == -1:
            if argument["required"] and not positionals:
                return None
            values[argument["name"]], positionals = tuple(positionals), []
        elif positionals:
            values[argument["name"]], positionals = positionals[0], positionals[1:]
        elif argument["required"]:
            return None
        else:
            values[argument["name"]] = None
    return None if positionals else values


# ---- the spec, from the click commands ---------------------------------------------------


def generate_spec():
    """What this parser needs to know of each hot command, read from its click definition."""
    import click

    from minictr.cli.commands import cli
    from minictr.cli.run_options import DockerCommand

    spec = {}
    for name in _ACTIONS:
        command = cli.get_command(None, name)
        context = command.context_settings
        # What click passes for each option not given: read from an invocation without any.
        defaults = command.make_context(name, [], resilient_parsing=True).params
        spec[name] = {
            "interspersed": context.get("allow_interspersed_args", command.allow_interspersed_args),
            "docker": isinstance(command, DockerCommand),
            "options": [_option_spec(p, defaults) for p in command.params if isinstance(p, click.Option)],
            "arguments": [{"name": p.name, "nargs": p.nargs, "required": p.required}
                          for p in command.params if isinstance(p, click.Argument)],
        }
    return spec


def _option_spec(option, defaults):
    import click

    if isinstance(option.type, click.Choice):
        kind = "CHOICE:" + "|".join(option.type.choices)
    else:
        kind = {click.INT: "INT"}.get(option.type, "STRING" if not option.is_flag else "BOOL")
    default = defaults[option.name]
    return {"name": option.name, "opts": list(option.opts), "secondary": list(option.secondary_opts),
            "flag": option.is_flag, "multiple": option.multiple, "type": kind, "default": default}


def write_spec(path):
    """Write the spec as a Python literal; commands with the same options (run and create)
    share one entry."""
    import pprint

    spec, written, lines = generate_spec(), {}, []
    for name, entry in spec.items():
        same = next((other for other, e in written.items() if e == entry), None)
        if same is None:
            lines.append(f"SPEC[{name!r}] = {pprint.pformat(entry, width=110, sort_dicts=False)}\n")
            written[name] = entry
        else:
            lines.append(f"SPEC[{name!r}] = SPEC[{same!r}]\n")
    text = ('"""Generated by `python -m minictr.cli.fast --write-spec` from the click commands: do not edit."""\n\n'
            "SPEC = {}\n" + "".join(lines))
    with open(path, "w") as f:
        f.write(text)


if __name__ == "__main__":
    if sys.argv[1:] != ["--write-spec"]:
        sys.exit("usage: python -m minictr.cli.fast --write-spec")
    write_spec(os.path.join(os.path.dirname(os.path.abspath(__file__)), "fast_spec.py"))
