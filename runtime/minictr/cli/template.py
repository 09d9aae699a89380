"""Go templates, the subset that `--format` in Docker's commands is written in.

Covers what real scripts use: fields (`.State.Status`), methods with arguments
(`.Label "k"`), pipes, variables (`$v`, `range $k, $v := …`), `if`/`else if`/
`else`/`end`, `range`, `with`, comments, `{{-`/`-}}` trimming, Go's builtins
(index, len, eq, ne, lt, le, gt, ge, and, or, not, print, printf, println,
slice) and Docker's own functions (json, split, join, title, lower, upper, pad,
truncate). Anything else (define, template, block) is a TemplateError: one line,
no traceback. Values print as Go prints them (`true`, `[a b]`, `map[k:v]`,
`<no value>`).

Objects other than dicts and lists expose fields to templates through a
`template_fields` set of attribute names; an attribute that is a method is
called with the arguments the template gives.

re and json are imported where they are needed, not here: `ps` renders its table
through this module on every call, and its templates (fields alone) need neither.
"""

from minictr.errors import InvalidArgument


class TemplateError(InvalidArgument):
    pass


_MISSING = type("Missing", (), {"__repr__": lambda self: "<no value>"})()


class Types:
    """What a JSON document's fields were in Go before they became JSON, so that templates print
    them as `docker inspect` does (it runs templates on its typed structs first): a null slice
    prints `[]`, a null map `map[]`, a null pointer `<nil>`; a struct prints `{a b}` (`&{a b}`
    through a pointer); a map of strings gives "" for a missing key; any other missing key is
    an error."""

    def __init__(self, slices=(), maps=(), structs=(), pointers=()):
        self.slices, self.maps = frozenset(slices), frozenset(maps)
        self.structs, self.pointers = frozenset(structs), frozenset(pointers)

    def wrap(self, name, value):
        if value is _MISSING:
            return value
        if value is None:
            return _TypedNil("[]" if name in self.slices else "map[]" if name in self.maps else "<nil>")
        if isinstance(value, dict) and not isinstance(value, GoStruct) and (name in self.structs or name in self.pointers):
            if name in self.maps and all(isinstance(v, str) for v in value.values()):
                return value  # a map of strings of the same name (LogConfig.Config)
            return GoStruct(value, self, name in self.pointers)
        return value


class GoStruct(dict):
    def __init__(self, fields, types, pointer=False):
        super().__init__(fields)
        self.types = types
        self.pointer = pointer


class _TypedNil:
    def __init__(self, display):
        self.display = display

    def template_string(self):
        return self.display

    def to_json(self):
        return None

# ---- lexing ----------------------------------------------------------------------------------

_TOKEN = r"""
    (?P<space>\s+)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<char>'(?:[^'\\]|\\.)+')
  | (?P<declare>:=)
  | (?P<assign>=)
  | (?P<number>[-+]?(?:0[xX][0-9a-fA-F]+|\d+\.\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|\d+(?:[eE][-+]?\d+)?))
  | (?P<field>(?:\.[A-Za-z_][A-Za-z0-9_]*)+)
  | (?P<variable>\$[A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<dot>\.)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<pipe>\|)
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<comma>,)
"""


def _position(source, offset):
    """Go's `line:column` of a byte offset (column counted from 0)."""
    return f"{source.count(chr(10), 0, offset) + 1}:{offset - (source.rfind(chr(10), 0, offset) + 1)}"


def _lex_action(text, line, base, source):
    field = _lex_field_alone(text, base, source)
    if field is not None:
        return [field]
    import re

    token, tokens, pos = re.compile(_TOKEN, re.VERBOSE), [], 0  # (re keeps compiled patterns)
    while pos < len(text):
        m = token.match(text, pos)
        if not m:
            raise TemplateError(f"template: :{line}: unexpected {text[pos]!r} in command")
        pos = m.end()
        if m.lastgroup != "space":
            tokens.append((m.lastgroup, m.group(), _position(source, base + m.start())))
    return tokens


def _lex_field_alone(text, base, source):
    """The token of an action that is one field chain and spaces (`{{.ID}}`, `{{ .State.Status }}`),
    as _TOKEN would give it, without importing re; None for any other action."""
    name = text.strip(" \t\r\n")
    first, *fields = name.split(".")
    if first or not fields or not all(f.isascii() and f.isidentifier() for f in fields):
        return None
    return ("field", name, _position(source, base + len(text) - len(text.lstrip(" \t\r\n"))))


def _split(source):
    """The template as ("text", str) and ("action", str, line) pieces, trim markers applied."""
    pieces, pos, line = [], 0, 1
    while True:
        start = source.find("{{", pos)
        if start < 0:
            pieces.append(("text", source[pos:]))
            return pieces
        text = source[pos:start]
        inner_start = start + 2
        if source.startswith("{{- ", start) or source.startswith("{{-\t", start) or source.startswith("{{-\n", start):
            text = text.rstrip(" \t\r\n")
            inner_start += 1
        pieces.append(("text", text))
        line += source.count("\n", pos, start)
        if source.startswith("/*", inner_start) or source.startswith(" /*", inner_start - 1):
            end_comment = source.find("*/", inner_start)
            if end_comment < 0:
                raise TemplateError(f"template: :{line}: unclosed comment")
            end = source.find("}}", end_comment)
        else:
            end = source.find("}}", inner_start)
        if end < 0:
            raise TemplateError(f"template: :{line}: unclosed action")
        inner = source[inner_start:end]
        pos = end + 2
        if inner.endswith(" -") or inner.endswith("\t-") or inner.endswith("\n-"):
            inner = inner[:-1]
            skip = len(source[pos:]) - len(source[pos:].lstrip(" \t\r\n"))
            line += source.count("\n", start, pos + skip)
            pos += skip
        else:
            line += source.count("\n", start, pos)
        if inner.strip().startswith("/*"):
            continue
        pieces.append(("action", inner, line, inner_start))


# ---- parsing ---------------------------------------------------------------------------------

class _Pipeline:
    def __init__(self, declare, commands, text):
        self.declare = declare  # variable names (`$k, $v :=`) or []
        self.commands = commands  # each a list of operands
        self.text = text


class _Parser:
    def __init__(self, source):
        self.source = source
        self.pieces = _split(source)
        self.i = 0

    def parse(self):
        nodes, end = self._list()
        if end is not None:
            raise TemplateError(f"template: :{end[2]}: unexpected {{{{{end[0]}}}}}")
        return nodes

    def _list(self):
        """Nodes up to an `else` or `end` (returned as the second item) or the end of input."""
        nodes = []
        while self.i < len(self.pieces):
            piece = self.pieces[self.i]
            self.i += 1
            if piece[0] == "text":
                if piece[1]:
                    nodes.append(("text", piece[1]))
                continue
            _, inner, line, base = piece
            tokens = [t[:2] for t in _lex_action(inner, line, base, self.source)]
            positions = [t[2] for t in _lex_action(inner, line, base, self.source)]
            if not tokens:
                raise TemplateError(f"template: :{line}: missing value for command")
            kind, word = tokens[0]
            if kind == "ident" and word in ("end", "else"):
                return nodes, (word, tokens[1:], line, positions[1:])
            if kind == "ident" and word in ("if", "range", "with"):
                nodes.append(self._block(word, tokens[1:], line, positions[1:]))
            elif kind == "ident" and word in ("define", "template", "block", "break", "continue"):
                raise TemplateError(f"template: :{line}: {{{{{word}}}}} is not supported by minictr's templates")
            else:
                nodes.append(("action", self._pipeline(tokens, line, inner, positions)))
        return nodes, None

    def _block(self, word, tokens, line, positions):
        if not tokens:
            raise TemplateError(f"template: :{line}: missing value for {word}")
        pipeline = self._pipeline(tokens, line, word, positions)
        body, end = self._list()
        if end is None:
            raise TemplateError(f"template: :{line}: unexpected EOF")
        otherwise = []
        if end[0] == "else":
            rest = end[1]
            if rest and rest[0] == ("ident", "if") and word == "if":
                # `else if` chains: the nested if consumes the one `end`.
                otherwise = [self._block("if", rest[1:], end[2], end[3][1:])]
            elif rest and rest[0] == ("ident", "with") and word == "with":
                otherwise = [self._block("with", rest[1:], end[2], end[3][1:])]
            elif rest:
                raise TemplateError(f"template: :{end[2]}: unexpected {rest[0][1]!r} after else")
            else:
                otherwise, end = self._list()
                if end is None or end[0] != "end":
                    raise TemplateError(f"template: :{line}: expected end; found {end[0] if end else 'EOF'}")
        return (word, pipeline, body, otherwise)

    def _pipeline(self, tokens, line, text, positions):
        declare = []
        if len(tokens) >= 2 and tokens[0][0] == "variable":
            # `$v :=`, `$k, $v :=`
            names, j = [tokens[0][1]], 1
            if tokens[1][0] == "comma" and len(tokens) >= 4 and tokens[2][0] == "variable":
                names.append(tokens[2][1])
                j = 3
            if j < len(tokens) and tokens[j][0] in ("declare", "assign"):
                declare, tokens, positions = names, tokens[j + 1:], positions[j + 1:]
        commands, current, stack = [], [], []
        for token, where in zip(tokens, positions):
            kind = token[0]
            if kind == "lparen":
                stack.append((commands, current))
                commands, current = [], []
            elif kind == "rparen":
                if not stack:
                    raise TemplateError(f"template: :{line}: unexpected right paren")
                commands.append(current)
                sub = ("pipeline", _Pipeline([], commands, text))
                commands, current = stack.pop()
                current.append(sub)
            elif kind == "pipe":
                if not current:
                    raise TemplateError(f"template: :{line}: missing command before |")
                commands.append(current)
                current = []
            elif kind in ("declare", "assign", "comma"):
                raise TemplateError(f"template: :{line}: unexpected {token[1]!r} in command")
            else:
                current.append(_operand(token, line) + (where,))
        if stack:
            raise TemplateError(f"template: :{line}: unclosed left paren")
        if not current:
            raise TemplateError(f"template: :{line}: missing value for command")
        commands.append(current)
        return _Pipeline(declare, commands, text.strip())


def _operand(token, line):
    kind, text = token
    if kind == "string":
        import json

        try:
            return ("const", json.loads(text))
        except ValueError:
            return ("const", text[1:-1].encode().decode("unicode_escape"))
    if kind == "raw":
        return ("const", text[1:-1])
    if kind == "char":
        return ("const", ord(text[1:-1].encode().decode("unicode_escape")))
    if kind == "number":
        import re

        if re.fullmatch(r"[-+]?(0[xX][0-9a-fA-F]+)", text):
            return ("const", int(text, 16))
        return ("const", float(text) if re.search(r"[.eE]", text) else int(text))
    if kind == "field":
        return ("field", None, text[1:].split("."))
    if kind == "variable":
        name, *fields = text.split(".")
        return ("field", name, fields)
    if kind == "dot":
        return ("field", None, [])
    if text in ("true", "false"):
        return ("const", text == "true")
    if text == "nil":
        return ("const", None)
    name, *fields = text.split(".")
    if fields:
        raise TemplateError(f"template: :{line}: function {name!r} followed by fields is not supported")
    return ("function", name)


# ---- values as Go prints them ----------------------------------------------------------------

def go_string(value, top=True):
    if value is _MISSING or (value is None and top):
        return "<no value>"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e21:
            return str(int(value))
        return repr(value).replace("e+0", "e+0")
    if isinstance(value, GoStruct):
        # (text/template prints a pointer to a struct as the struct; fmt, nested, would print an address)
        return "{" + " ".join(
            go_string(value.types.wrap(k, v), False) for k, v in value.items()) + "}"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_string(value[k], False)}" for k in sorted(value)) + "]"
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(go_string(v, False) for v in value) + "]"
    if hasattr(value, "template_string"):
        return value.template_string()
    return str(value)


def to_json(value):
    """Docker's `json` function: compact, no HTML escaping."""
    import json

    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_json_default)


def _json_default(value):
    if value is _MISSING:
        return None
    if hasattr(value, "to_json"):
        return value.to_json()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def truth(value):
    if value is _MISSING or value is None or isinstance(value, _TypedNil):
        return False
    if isinstance(value, (bool, int, float, str, list, tuple, dict)):
        return bool(value)
    return True


# ---- functions -------------------------------------------------------------------------------

def _index(item, *keys):
    for key in keys:
        if isinstance(item, dict):
            if key in item:
                item = item[key]
            elif all(isinstance(v, str) for v in item.values()):
                item = ""  # Docker's typed map[string]string gives its zero value
            else:
                item = _MISSING
        elif isinstance(item, (list, tuple, str)):
            if not isinstance(key, int) or not 0 <= key < len(item):
                raise TemplateError(f"error calling index: index out of range: {key}")
            item = item[key]
        elif item is None or item is _MISSING:
            raise TemplateError("error calling index: index of untyped nil")
        else:
            raise TemplateError(f"error calling index: can't index item of type {type(item).__name__}")
    return item


def _compare(name, test):
    def compare(a, b):
        if isinstance(a, bool) != isinstance(b, bool) or isinstance(a, str) != isinstance(b, str):
            raise TemplateError(f"error calling {name}: incompatible types for comparison")
        return test(a, b)
    return compare


def _eq(a, *others):
    if not others:
        raise TemplateError("error calling eq: missing argument for comparison")
    return any(_norm(a) == _norm(b) for b in others)


def _norm(value):
    return None if value is _MISSING else value


def _printf(fmt, *args):
    import json
    import re

    out, args, i = [], list(args), 0

    def next_arg():
        return args.pop(0) if args else _MISSING

    while i < len(fmt):
        ch = fmt[i]
        if ch != "%" or i + 1 == len(fmt):
            out.append(ch)
            i += 1
            continue
        m = re.match(r"%([-+ 0#]*)(\d*)(?:\.(\d+))?([a-zA-Z%])", fmt[i:])
        if not m:
            out.append(ch)
            i += 1
            continue
        flags, width, precision, verb = m.groups()
        i += m.end()
        if verb == "%":
            out.append("%")
            continue
        arg = next_arg()
        if verb == "d":
            text = str(int(arg))
        elif verb == "q":
            text = json.dumps(go_string(arg), ensure_ascii=False)
        elif verb in "fFeEgG" and isinstance(arg, (int, float)):
            text = f"%{'.' + precision if precision else ''}{verb}" % arg
        elif verb == "x" and isinstance(arg, int):
            text = f"{arg:x}"
        else:
            text = go_string(arg)
            if precision and verb == "s":
                text = text[:int(precision)]
        if width:
            text = text.ljust(int(width)) if "-" in flags else text.rjust(int(width), "0" if "0" in flags else " ")
        out.append(text)
    return "".join(out)


def _print(*args):
    # Go's fmt.Sprint adds spaces between operands when neither is a string.
    out = ""
    for i, arg in enumerate(args):
        if i and not isinstance(arg, str) and not isinstance(args[i - 1], str):
            out += " "
        out += go_string(arg)
    return out


def _slice(item, *indexes):
    if len(indexes) > 2:
        raise TemplateError("error calling slice: too many slice indexes")
    return item[slice(*indexes)] if indexes else item


def _length(item):
    if item is None or item is _MISSING or not hasattr(item, "__len__"):
        raise TemplateError(f"error calling len: len of {go_string(item)}")
    return len(item)


def _title(text):
    import re

    return re.sub(r"\w+", lambda m: m.group()[0].upper() + m.group()[1:].lower(), text)


def _strings(name, function):
    def call(*args):
        for arg in args:
            if isinstance(arg, (dict, list)) and name != "join":
                raise TemplateError(f"error calling {name}: wrong type for value; expected string")
        return function(*args)
    return call


def _join(items, sep):
    if not isinstance(items, (list, tuple)):
        raise TemplateError("error calling join: wrong type for value; expected []string")
    return sep.join(go_string(item, False) for item in items)


FUNCTIONS = {
    # Docker's (cli/templates)
    "json": to_json,
    "split": _strings("split", lambda s, sep: s.split(sep) if sep else list(s)),
    "join": _join,
    "title": _strings("title", _title),
    "lower": _strings("lower", lambda s: go_string(s).lower()),
    "upper": _strings("upper", lambda s: go_string(s).upper()),
    "pad": lambda s, before, after: " " * before + go_string(s) + " " * after,
    "truncate": lambda s, n: go_string(s)[:n],
    # Go's builtins
    "index": _index,
    "len": _length,
    "slice": _slice,
    "print": _print,
    "printf": _printf,
    "println": lambda *args: " ".join(go_string(a) for a in args) + "\n",
    "eq": _eq,
    "ne": lambda a, b: not _eq(a, b),
    "lt": _compare("lt", lambda a, b: a < b),
    "le": _compare("le", lambda a, b: a <= b),
    "gt": _compare("gt", lambda a, b: a > b),
    "ge": _compare("ge", lambda a, b: a >= b),
    "not": lambda a: not truth(a),
    # and/or are special: they return an operand, not a boolean
    "and": lambda *args: next((a for a in args if not truth(a)), args[-1]),
    "or": lambda *args: next((a for a in args if truth(a)), args[-1]),
}

# For the header row of a `table` template: every function gives back its first argument.
HEADER_FUNCTIONS = {name: (lambda v, *rest: v) for name in
                    ("json", "split", "join", "title", "lower", "upper", "pad", "truncate")}


# ---- execution -------------------------------------------------------------------------------

class Template:
    """A parsed template: `Template(source).execute(data)` returns the text."""

    def __init__(self, source):
        self.source = source
        self.nodes = _Parser(source).parse()
        self._check_functions(self.nodes, FUNCTIONS)

    def execute(self, data, functions=None, types=None):
        funcs = dict(FUNCTIONS, **(functions or {}))
        self.types = types
        if types is not None and isinstance(data, dict):
            data = GoStruct(data, types)
        out = []
        self._run(self.nodes, data, {"$": data}, funcs, out)
        return "".join(out)

    def _check_functions(self, nodes, funcs):
        for node in nodes:
            if node[0] == "text":
                continue
            pipelines = [node[1]]
            for pipeline in pipelines:
                for command in pipeline.commands:
                    for operand in command:
                        if operand[0] == "function" and operand[1] not in funcs:
                            raise TemplateError(f'template: :1: function "{operand[1]}" not defined')
                        if operand[0] == "pipeline":
                            pipelines.append(operand[1])
            if node[0] in ("if", "range", "with"):
                self._check_functions(node[2], funcs)
                self._check_functions(node[3], funcs)

    def _run(self, nodes, dot, variables, funcs, out):
        for node in nodes:
            kind = node[0]
            if kind == "text":
                out.append(node[1])
            elif kind == "action":
                value = self._pipeline(node[1], dot, variables, funcs)
                if not node[1].declare:
                    out.append(go_string(value))
            elif kind == "if":
                value = self._pipeline(node[1], dot, variables, funcs)
                self._run(node[2] if truth(value) else node[3], dot, dict(variables), funcs, out)
            elif kind == "with":
                value = self._pipeline(node[1], dot, dict(variables), funcs)
                if truth(value):
                    self._run(node[2], value, dict(variables), funcs, out)
                else:
                    self._run(node[3], dot, dict(variables), funcs, out)
            elif kind == "range":
                self._range(node, dot, variables, funcs, out)

    def _range(self, node, dot, variables, funcs, out):
        pipeline = node[1]
        value = self._pipeline(_Pipeline([], pipeline.commands, pipeline.text), dot, variables, funcs)
        if isinstance(value, dict):
            items = [(k, value[k]) for k in sorted(value)]
        elif isinstance(value, (list, tuple)):
            items = list(enumerate(value))
        elif isinstance(value, int) and not isinstance(value, bool):
            items = [(i, i) for i in range(value)]
        elif value is None or value is _MISSING:
            items = []
        else:
            raise TemplateError(f"template: :1: executing \"\" at <{pipeline.text}>: range can't iterate over {go_string(value)}")
        if not items:
            self._run(node[3], dot, dict(variables), funcs, out)
            return
        for key, item in items:
            scope = dict(variables)
            if len(pipeline.declare) == 1:
                scope[pipeline.declare[0]] = item
            elif len(pipeline.declare) == 2:
                scope[pipeline.declare[0]], scope[pipeline.declare[1]] = key, item
            self._run(node[2], item, scope, funcs, out)

    def _pipeline(self, pipeline, dot, variables, funcs):
        value = _MISSING
        for i, command in enumerate(pipeline.commands):
            final = [value] if i > 0 else []
            value = self._command(command, final, dot, variables, funcs, pipeline.text)
        for name in pipeline.declare[-1:]:
            variables[name] = value
        return value

    def _command(self, command, final, dot, variables, funcs, text):
        head, args = command[0], command[1:]
        if head[0] == "function":
            values = [self._operand(a, dot, variables, funcs) for a in args] + final
            try:
                return funcs[head[1]](*values)
            except TemplateError as e:
                raise TemplateError(f"{_where(head)}: {e}") from None
            except (TypeError, ValueError, AttributeError, IndexError) as e:
                raise TemplateError(f"{_where(head)}: error calling {head[1]}: {e}") from None
        if head[0] == "field" and (args or final):
            values = [self._operand(a, dot, variables, funcs) for a in args] + final
            return self._field(head, dot, variables, values)
        if args or final:
            raise TemplateError(f"{_where(head)}: can't give argument to non-function "
                                f"{go_string(self._operand(head, dot, variables, funcs))}")
        return self._operand(head, dot, variables, funcs)

    def _operand(self, operand, dot, variables, funcs):
        if operand[0] == "const":
            return operand[1]
        if operand[0] == "field":
            return self._field(operand, dot, variables, None)
        if operand[0] == "pipeline":
            return self._pipeline(operand[1], dot, variables, funcs)
        try:
            return funcs[operand[1]]()
        except TypeError:
            raise TemplateError(f"{_where(operand)}: wrong number of args for {operand[1]}") from None

    def _field(self, operand, dot, variables, call_args):
        _, variable, names, _pos = operand
        if variable is not None:
            if variable not in variables:
                raise TemplateError(f'template: :{_pos}: undefined variable "{variable}"')
            value = variables[variable]
        else:
            value = dot
        if call_args and not names:
            raise TemplateError(f"{_where(operand)}: can't give argument to non-function {go_string(value)}")
        for n, name in enumerate(names):
            last = n == len(names) - 1
            value = _lookup(value, name, call_args if last else None, _where(operand), self.types)
        return value


def _where(operand):
    if operand[0] == "field":
        _, variable, names, pos = operand
        text = (variable or "") + "".join("." + n for n in names) or "."
        if variable is None and len(names) > 1:
            # Go places a chain of fields (.A.B.C) at its second field.
            line, col = pos.split(":")
            pos = f"{line}:{int(col) + 1 + len(names[0])}"
    else:
        text, pos = str(operand[1]), operand[-1]
    return f'template: :{pos}: executing "" at <{text}>'


def _lookup(value, name, call_args, where, types=None):
    if isinstance(value, dict):
        if call_args:
            raise TemplateError(f"{where}: {name} is not a method but has arguments")
        if types is None or not isinstance(value, GoStruct):
            return value.get(name, _MISSING) if types is None else types.wrap(name, value.get(name, _MISSING))
        if name in value:
            return types.wrap(name, value[name])
        raise TemplateError(f'{where}: map has no entry for key "{name}"')
    fields = getattr(type(value), "template_fields", None)
    if fields is not None and name in fields:
        attr = getattr(value, name)
        if callable(attr):
            try:
                return attr(*(call_args or []))
            except TypeError:
                raise TemplateError(f"{where}: wrong number of args for {name}") from None
        if call_args:
            raise TemplateError(f"{where}: {name} is not a method but has arguments")
        return attr
    if value is None or value is _MISSING or isinstance(value, _TypedNil):
        raise TemplateError(f"{where}: nil pointer evaluating interface {{}}.{name}")
    kind = getattr(type(value), "template_type", None) or _go_type(value)
    raise TemplateError(f"{where}: can't evaluate field {name} in type {kind}")


def _go_type(value):
    return {bool: "bool", int: "int", float: "float64", str: "string", list: "[]interface {}"}.get(type(value), type(value).__name__)


def render(source, data, functions=None):
    return Template(source).execute(data, functions)


# ---- Docker's --format conventions -----------------------------------------------------------

class TableHeader:
    """The header row of a `table` template: each field gives its column title. Subclasses set
    `titles` ({field: title}); the fields a template may name are its keys."""

    titles = {}

    def __init_subclass__(cls):
        cls.template_fields = frozenset(cls.titles)

    def __getattr__(self, name):
        if name in self.titles:
            return self.titles[name]
        raise AttributeError(name)


def render_rows(format_, rows, header):
    """(is_table, text) of ROWS (objects a template reads) through a `--format` value, as Docker's
    formatter prints them: one line each, and for a `table` HEADER's line (a TableHeader) on top,
    columns aligned."""
    table, source = prepare(format_)
    template = Template(source)
    lines = "".join(template.execute(row) + "\n" for row in rows)
    if not table:
        return False, lines
    return True, tabwrite(template.execute(header, HEADER_FUNCTIONS) + "\n" + lines)


def prepare(format_):
    """(is_table, template source) for a `--format` value as Docker's formatter reads it:
    a `table` prefix, `json` alone, and the escapes `\\t` and `\\n`."""
    table = format_.startswith("table")
    if table:
        source = format_[len("table"):]
    elif format_.strip() == "json":
        source = "{{json .}}"
    else:
        source = format_
    source = source.strip(" ").replace("\\t", "\t").replace("\\n", "\n")
    return table, source


def tabwrite(text, minwidth=10, padding=3):
    """Go's text/tabwriter as Docker sets it up (minwidth 10, padding 3, spaces): tab-terminated
    cells are aligned in columns, the text after a line's last tab is not."""
    lines = text.split("\n")
    cells = [line.split("\t") for line in lines]
    out = [None] * len(lines)
    _align(cells, 0, 0, len(cells), minwidth, padding, out)
    return "\n".join("".join(parts) for parts in out)


def _align(cells, column, start, end, minwidth, padding, out):
    # A column block is a run of consecutive lines that all have a terminated cell in `column`.
    i = start
    while i < end:
        if len(cells[i]) - 1 <= column:
            if out[i] is None:
                out[i] = list(cells[i][:-1]) + [cells[i][-1]]
            i += 1
            continue
        j = i
        while j < end and len(cells[j]) - 1 > column:
            j += 1
        width = max(minwidth, max(_width(cells[k][column]) + padding for k in range(i, j)))
        for k in range(i, j):
            cells[k][column] = cells[k][column] + " " * (width - _width(cells[k][column]))
        _align(cells, column + 1, i, j, minwidth, padding, out)
        i = j


def _width(text):
    return len(text)
