#!/usr/bin/env python3
"""Extract a layer blob (a tar, maybe gzip/zstd) with minictr's hostile-tar-proof extractor, as a pull does
once the blob is cached: the `pull` part times this against `tar -x` of the same blob.

usage: extract.py BLOB DIR     (DIR: an existing, empty directory; the layer is extracted below it, then kept)
       extract.py --hash BLOB  (only the sha256 of BLOB, as hashlib computes a diff id: the floor of a checked
                                extraction)
"""

import hashlib
import os
import sys
from pathlib import Path

if sys.argv[1] == "--hash":
    digest = hashlib.sha256()
    with open(sys.argv[2], "rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    print("sha256:" + digest.hexdigest())
    sys.exit(0)

from minictr.images.layers import extract_layer  # noqa: E402

blob, layers_dir = sys.argv[1], Path(sys.argv[2])
with open(blob, "rb") as stream:
    layer = extract_layer(stream, layers_dir, rootless=os.geteuid() != 0, max_size=1 << 40)
print(layer.diff_id)
