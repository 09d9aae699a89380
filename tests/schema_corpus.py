"""Malformed Engine API bodies generated from minictr.spec.schema: for every field of a struct (and
of every struct inside it), a body that is valid but for that field, which has a wrong JSON kind
or an integer its Go type cannot hold. Shared by the unit test of the decoder and the
integration test that sends them to a daemon."""

from minictr.spec import schema

# What to put where a kind is expected: each value is of another JSON kind (or out of range).
_WRONG = {
    schema.STRING: [5, True, ["a"], {"a": "b"}],
    schema.BOOL: ["true", 1, [True]],
    schema.STRSLICE: [5, {"a": "b"}, [5], [["a"]]],
    schema.OBJECT: [5, "x", [{}]],
    **{kind: ["1", True, 1.5, 1e308, [1], high + 1, low - 1] for kind, (low, high) in schema._INT_RANGES.items()},
}

# A valid value of a map's key, where the key has a meaning (a port, a network).
_KEYS = {"PortBindings": "80/tcp", "ExposedPorts": "80/tcp", "EndpointsConfig": "bridge"}


def _wrong_values(kind):
    if isinstance(kind, tuple):
        shape, item = kind
        container_wrong = [{"a": 1}, "x"] if shape == "array" else [["a"], "x"]
        return container_wrong + [_wrap_item(shape, value) for value in _wrong_values(item)[:2]]
    if kind in schema.STRUCTS:
        return [[{}], "x", 5]
    return _WRONG[kind]


def _wrap_item(shape, value, key="k"):
    return [value] if shape == "array" else {key: value}


def malformed_bodies(root, base, max_depth=4):
    """[(the field's name as the error names it, body)] for `root` (a key of schema.STRUCTS), each
    body `base` with one field made wrong."""
    bodies = []
    for field, kind in schema.STRUCTS[root].items():
        for value in _wrong_values(kind):
            bodies.append((f"{root}.{field}", {**base, field: value}))
        for name, inner in _nested(kind, field, max_depth):
            bodies.append((name, {**base, field: inner}))
    return bodies


def _nested(kind, field, depth):
    """Wrong bodies inside a struct-typed field (or an array or a map of structs)."""
    if depth == 0:
        return []
    if isinstance(kind, tuple):
        shape, item = kind
        return [(name, _wrap_item(shape, value, _KEYS.get(field, "k"))) for name, value in _nested(item, field, depth)]
    if kind not in schema.STRUCTS:
        return []
    return malformed_bodies(kind, {}, depth - 1)
