"""Docker's way of printing tables, sizes and ages."""

import json

from minictr.spec.times import since


def table(headers, rows):
    """Columns padded as Go's tabwriter pads Docker's output: three spaces between columns."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]
    lines = []
    for row in [headers, *rows]:
        cells = [str(cell).ljust(width) for cell, width in zip(row, widths)]
        lines.append("   ".join(cells).rstrip())
    return "\n".join(lines)


def ago(unix_seconds):
    return f"{since(unix_seconds)} ago"


def size(n):
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000:
            return f"{n:.3g}{unit}" if unit != "B" else f"{n}B"
        n /= 1000
    return f"{n:.3g}TB"


def short_id(image_or_container_id):
    return image_or_container_id.split(":")[-1][:12]


def dump(objects):
    return json.dumps(objects, indent=4)
