"""Image service: references, the image store, hostile-tar-proof layer extraction, import and load."""
