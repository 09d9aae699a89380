"""Docker's `filters` query (api/types/filters): its JSON parsed, and the generic matches every
list and prune endpoint uses (exact-or-regex values, label lists)."""

import json
import re

from minictr.errors import InvalidArgument


def parse(text):
    """{key: [values]} from the JSON of a `filters` query, in either of Docker's forms:
    `{"status":["running"]}` or the older `{"status":{"running":true}}`."""
    if not text:
        return {}
    try:
        raw = json.loads(text)
    except ValueError as e:
        raise InvalidArgument(f"invalid filter: {e}") from None
    if not isinstance(raw, dict):
        raise InvalidArgument("invalid filter: the filters must be a JSON object")
    filters = {}
    for key, values in raw.items():
        if isinstance(values, dict):
            values = [value for value, enabled in values.items() if enabled]
        elif isinstance(values, str):
            values = [values]
        elif not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise InvalidArgument(f"invalid filter '{key}'")
        filters[key] = list(dict.fromkeys(values))
    return filters


def regex_match(patterns, text):
    """Docker's Args.Match: an exact value, or a regular expression found anywhere in `text`."""
    if not patterns or text in patterns:
        return True
    for pattern in patterns:
        try:
            if re.search(pattern, text):
                return True
        except re.error:
            continue
    return False


def labels_match(wanted, labels):
    """Docker's Args.MatchKVList: every `key` or `key=value` must hold."""
    if not wanted:
        return True
    for item in wanted:
        key, sep, value = item.partition("=")
        if key not in labels or (sep and labels[key] != value):
            return False
    return True
