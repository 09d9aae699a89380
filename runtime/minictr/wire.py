"""JSON as the API sends it: json.dumps and json.loads with their defaults, on CPython's `_json`
C accelerator alone.

The json package's Python wrapper imports re (json.decoder's whitespace pattern, json.encoder's
escapes), enum with it, ~8 ms of every CLI start: more than the CLI's own work for `minictr stop`.
orjson takes 22 ms to import. The C encoder and scanner beneath json cost nothing to import and
give the same text and values; anything they cannot decode (a document that is not JSON, UTF-16
or UTF-32 bytes, a BOM, a wrong type) goes to json.loads itself, so errors are json's own.
"""

import _json

_WHITESPACE = " \t\n\r"  # json.decoder's WHITESPACE

# First bytes no UTF-8 JSON document starts with: the BOMs of UTF-8, UTF-16 and UTF-32.
_BOM_STARTS = (b"\xef", b"\xfe", b"\xff")


def dumps(value):
    """json.dumps(value): the ASCII-only JSON text of a dict, list, str, number, bool or None."""
    if isinstance(value, str):
        return _json.encode_basestring_ascii(value)
    # A fresh encoder per call: its `markers` (the circular-reference check) must not outlive one
    # encoding, which an error can leave half-filled, nor be shared between threads.
    encode = _json.make_encoder({}, _unserializable, _json.encode_basestring_ascii, None,
                                ": ", ", ", False, False, True)
    return "".join(encode(value, 0))


def _unserializable(value):
    raise TypeError(f"Object of type {value.__class__.__name__} is not JSON serializable")


class _Decoding:
    """What `_json.make_scanner` reads from its json.JSONDecoder: json.loads's defaults."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}.__getitem__
    memo = {}


_scan = _json.make_scanner(_Decoding())


def loads(document):
    """json.loads(document) for a str, bytes or bytearray; ValueError (json.JSONDecodeError) if it
    is not JSON."""
    if isinstance(document, (bytes, bytearray)):
        if document[:1] in _BOM_STARTS or 0 in document[:4]:
            return _json_loads(document)  # UTF-16, UTF-32 or a BOM: json's encoding detection
        document = document.decode("utf-8", "surrogatepass")
    elif not isinstance(document, str):
        return _json_loads(document)  # json's TypeError
    try:
        value, end = _scan(document, len(document) - len(document.lstrip(_WHITESPACE)))
    except (StopIteration, SystemError):
        # StopIteration: no value where one must be. SystemError: Python 3.11's scanner raises
        # json.decoder.JSONDecodeError only when json.decoder was imported already.
        return _json_loads(document)
    if document[end:].strip(_WHITESPACE):
        return _json_loads(document)  # "Extra data"
    return value


def _json_loads(document):
    """What json.loads does with a document the fast path does not take: its value, or its error."""
    import json

    return json.loads(document)
