"""The filters query (spec/filters.py) in both of Docker's forms."""

import pytest

from minictr.errors import InvalidArgument
from minictr.spec.filters import parse


def test_both_json_forms_parse_to_the_same_filters():
    assert parse('{"status":["running"],"name":["x"]}') == {"status": ["running"], "name": ["x"]}
    assert parse('{"status":{"running":true,"exited":true}}') == {"status": ["running", "exited"]}
    assert parse("") == {}


@pytest.mark.parametrize("text", ["[1]", "{nope", '{"name":[1]}'])
def test_malformed_filters_are_invalid(text):
    with pytest.raises(InvalidArgument):
        parse(text)
