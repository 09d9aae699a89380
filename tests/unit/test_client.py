"""The CLI's transport: query strings as the Docker API expects them."""

from minictr.client import quote_path, urlencode


def test_urlencode_repeats_list_values_and_drops_none():
    query = {"fromSrc": "-", "changes": ['CMD ["sh"]', "ENV A=b c"], "repo": None, "all": 1}
    assert urlencode(query) == "fromSrc=-&changes=CMD%20%5B%22sh%22%5D&changes=ENV%20A%3Db%20c&all=1"


def test_quote_path_escapes_slashes_and_unicode():
    assert quote_path("a/b:c") == "a%2Fb%3Ac"
    assert quote_path("é") == "%C3%A9"
