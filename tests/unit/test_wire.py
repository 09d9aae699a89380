"""wire.dumps and wire.loads are json.dumps and json.loads, to the character and to the error,
for everything the API sends."""

import json
import subprocess
import sys

import pytest

from minictr import wire

VALUES = [
    None, True, False, 0, -1, 7, 2**63, 2**64 + 1, -(10**40), 10**300,
    0.0, -0.0, 1.5, -2.25, 0.1 + 0.2, 1e16, 1e-7, 1e300, 5e-324, 1.7976931348623157e308,
    float("nan"), float("inf"), float("-inf"),
    "", "plain", "é ü ß", "中文", "🐳 whale", "quote \" backslash \\ slash /",
    "\n\t\r\b\f", "\x00\x01\x1f\x7f\x80\xff", "\u2028\u2029", "\ud800 lone surrogate", "\ufeff",
    [], {}, [[]], [{}], {"": ""}, {"": {}}, {"a": [1, {"b": None}], "c": "d"},
    list(range(300)), [[[[[[[[[["deep"]]]]]]]]]], {"k" * 1000: "v" * 100000},
    {"Image": "bb", "Cmd": ["sh", "-c", "echo 'hi' \"there\" $HOME"], "Env": ["A=1", "É=ü"],
     "Labels": {"com.example/ünïcode": "✓"}, "HostConfig": {"AutoRemove": True, "Memory": 67108864,
     "NanoCpus": 1500000000, "RestartPolicy": {"Name": "", "MaximumRetryCount": 0}}, "Tty": False},
]

# Only dumps takes these: tuples and keys that are not strings, as json.dumps writes them.
DUMPS_ONLY = [(1, 2), ((),), {1: "int", 2.5: "float", False: "bool", None: "none", "s": "str"},
              {float("nan"): 1}, [(), {}, ((("nested",),),)]]


@pytest.mark.parametrize("value", VALUES + DUMPS_ONLY, ids=repr)
def test_dumps_writes_what_json_dumps_writes(value):
    assert wire.dumps(value) == json.dumps(value)


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_loads_reads_back_what_json_loads_reads(value):
    text = json.dumps(value)
    expected = repr(json.loads(text))  # repr: nan, -0.0, 1 against 1.0 and key order all count
    assert repr(wire.loads(text)) == expected
    assert repr(wire.loads(text.encode())) == expected
    assert repr(wire.loads(bytearray(text.encode()))) == expected


# Written by hand: what json.dumps never writes but a JSON text may hold.
DOCUMENTS = [
    '  {"a" :\n[1 ,2\t]}\r\n', '\n"x"\n', '"\\u00e9\\ud83d\\udc33\\/\\b\\f\\n\\r\\t\\"\\\\"',
    '"é 中文 🐳"', '1E400', '-1e-400', '-0', '0.5e+2', '123456789012345678901234567890',
    'NaN', '-Infinity', '[Infinity, NaN]', '{"a": 1, "a": 2}', '"\\ud800"', '[]', '{}', 'true',
    ' null ', '"' + "x" * 100000 + '"', "[" * 500 + "]" * 500,
]


@pytest.mark.parametrize("document", DOCUMENTS, ids=repr)
def test_documents_read_as_json_reads_them(document):
    assert repr(wire.loads(document)) == repr(json.loads(document))
    assert repr(wire.loads(document.encode())) == repr(json.loads(document.encode()))


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le",
                                      "utf-32-be"])
def test_bytes_in_any_encoding_json_detects(encoding):
    data = '{"name": "é 🐳", "n": [1, 2.5]}'.encode(encoding)
    assert wire.loads(data) == json.loads(data) == {"name": "é 🐳", "n": [1, 2.5]}


INVALID = [
    "", " ", "\n", "{", "[", "[1,]", "[1 2]", '{"a" 1}', '{"a": 1,}', '{a: 1}', "{'a': 1}", "[1] [2]",
    '{"a": 1}}', "01", "nul", "True", "nan", "-", "1.", ".5", "+1", '"unterminated', '"\\x"', '"\\u12"',
    '"tab\there"', '"new\nline"', "[" * 10 + "]" * 9, "1" * 5000,
]


def _error(loads, document):
    with pytest.raises((ValueError, TypeError)) as error:
        loads(document)
    return type(error.value), str(error.value)


@pytest.mark.parametrize("document", INVALID, ids=repr)
def test_what_is_not_json_raises_what_json_raises(document):
    assert _error(wire.loads, document) == _error(json.loads, document)
    assert _error(wire.loads, document.encode()) == _error(json.loads, document.encode())


@pytest.mark.parametrize("document", [b'"\xff"', b'["\xc3"]', b"\xef\xbb", b"\xff\xfe{", "\ufeff{}", 5, None,
                                      ["[]"]], ids=repr)
def test_bad_bytes_a_bom_in_text_and_wrong_types_raise_what_json_raises(document):
    assert _error(wire.loads, document) == _error(json.loads, document)


def test_json_decode_errors_are_value_errors_with_their_position():
    with pytest.raises(ValueError) as error:
        wire.loads(b'{"Id": "abc",\n "Warnings": [}')
    assert isinstance(error.value, json.JSONDecodeError)
    assert (error.value.lineno, error.value.colno) == (2, 15)


def test_a_bad_document_raises_json_s_error_before_json_is_imported():
    # Python 3.11's _json scanner finds JSONDecodeError only in an imported json.decoder.
    code = ("import sys\nfrom minictr import wire\nassert 'json.decoder' not in sys.modules\n"
            "try:\n    wire.loads('{\"a\" 1}')\nexcept ValueError as e:\n    print(type(e).__name__, e)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "JSONDecodeError Expecting ':' delimiter: line 1 column 6 (char 5)"


@pytest.mark.parametrize("value", [object(), {"a": {1, 2}}, [b"bytes"], {(1, 2): "tuple key"}], ids=repr)
def test_what_json_cannot_write_raises_what_json_raises(value):
    assert _error(wire.dumps, value) == _error(json.dumps, value)


def test_circular_references_are_refused_and_forgotten_after_the_error():
    loop = []
    loop.append(loop)
    assert _error(wire.dumps, loop) == (ValueError, "Circular reference detected")
    shared = [1]
    with pytest.raises(TypeError):
        wire.dumps([shared, object()])
    assert wire.dumps([shared, shared]) == "[[1], [1]]"  # a repeat is no cycle
