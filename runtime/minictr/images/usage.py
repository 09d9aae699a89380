"""What images are made of and what they cost: `history`, `image prune`, the images of `system df`."""

import re
import time

from minictr.errors import InvalidArgument
from minictr.images.store import _unix_time
from minictr.spec.times import until_filter

PRUNE_FILTERS = {"dangling", "until", "label", "label!"}


def history(store, name: str) -> list[dict]:
    """GET /images/{name}/history: one entry per history step, newest first, as Docker's
    ({Id, Created, CreatedBy, Tags, Size, Comment}); steps that made a layer carry its size.
    The image itself and its parents (commit's) name the steps from the top, one each, as
    Docker's; the steps below show `<missing>`, as Docker shows them for images pulled or
    loaded without their parents."""
    image = store.resolve(name)
    document = image.document
    diff_ids = document["rootfs"]["diff_ids"]
    sizes = {row["diff_id"]: row["size"] for row in store.db.query(
        "SELECT diff_id, size FROM layers WHERE diff_id IN (SELECT diff_id FROM image_layers WHERE image_id = ?)",
        (image.id,))}
    steps = document.get("history") or [{"created": document.get("created")} for _ in diff_ids]
    entries, layer = [], 0
    for step in steps:
        size = 0
        if not step.get("empty_layer") and layer < len(diff_ids):
            size = sizes.get(diff_ids[layer], 0)
            layer += 1
        entries.append({"Id": "<missing>", "Created": _unix_time(step.get("created")),
                        "CreatedBy": step.get("created_by", ""), "Tags": None, "Size": size,
                        "Comment": step.get("comment", "")})
    entries.reverse()
    image_id = image.id
    for entry in entries:
        tags, _ = store._repo_tags_and_digests(image_id)
        entry.update(Id=image_id, Tags=tags or None)
        image_id = store.parent(image_id)
        if not image_id:
            break
    return entries


LIST_FILTERS = {"dangling", "label", "label!", "before", "since", "reference", "until"}


def list_images(store, filters: dict, all_images: bool = False) -> list[dict]:
    """GET /images/json with Docker's `filters`: dangling, label, label!, before, since, until and
    reference (a path.Match pattern on the familiar `name:tag` or name; only the matching RepoTags
    and RepoDigests stay, and an image none matches is left out). Without `all_images`, an
    untagged image with child images (a commit's parent, untagged since) is left out, as Docker's
    intermediate images; `dangling` never counts it."""
    unknown = set(filters) - LIST_FILTERS
    if unknown:
        raise InvalidArgument(f"invalid filter '{sorted(unknown)[0]}'")
    dangling = _dangling(filters["dangling"]) if filters.get("dangling") else None
    until = until_filter(filters.get("until"), time.time())
    before = min((_created(store, ref) for ref in filters.get("before", [])), default=None)
    since = max((_created(store, ref) for ref in filters.get("since", [])), default=None)
    patterns = [_path_pattern(p) for p in filters.get("reference", [])]
    selected = []
    summaries = store.list_images()
    parents = {summary["ParentId"] for summary in summaries}
    for summary in summaries:
        intermediate = not summary["RepoTags"] and not summary["RepoDigests"] and summary["Id"] in parents
        if intermediate and (not all_images or dangling is not None):
            continue
        if dangling is not None and bool(summary["RepoTags"]) == dangling:
            continue
        if until is not None and summary["Created"] >= until:
            continue
        if before is not None and summary["Created"] >= before:
            continue
        if since is not None and summary["Created"] <= since:
            continue
        if not _labels_pass(filters, summary["Labels"] or {}):
            continue
        if patterns:
            tags = [ref for ref in summary["RepoTags"] if _reference_matches(patterns, ref)]
            digests = [ref for ref in summary["RepoDigests"] if _reference_matches(patterns, ref)]
            if not tags and not digests:
                continue
            summary = dict(summary, RepoTags=tags, RepoDigests=digests)
        selected.append(summary)
    return selected


def _created(store, name: str) -> int:
    return _unix_time(store.resolve(name).document.get("created"))


def _path_pattern(pattern: str):
    """Go's path.Match as a regular expression: `*` and `?` never cross a `/`."""
    out, i = [], 0
    while i < len(pattern):
        char = pattern[i]
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                raise InvalidArgument(f"invalid filter 'reference={pattern}': syntax error in pattern")
            body = pattern[i + 1:end]
            out.append("[" + ("^" + body[1:] if body.startswith("^") else body).replace("\\", "\\\\") + "]")
            i = end
        elif char == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(char))
        i += 1
    return re.compile("".join(out) + r"\Z")


def _reference_matches(patterns, familiar: str) -> bool:
    """Docker's reference.FamiliarMatch: the pattern against `name:tag` (or `name@digest`), then the name."""
    name = familiar.split("@", 1)[0]
    if ":" in name.rsplit("/", 1)[-1]:
        name = name.rsplit(":", 1)[0]
    return any(p.match(familiar) or p.match(name) for p in patterns)


def prune(store, filters: dict, in_use) -> dict:
    """POST /images/prune: dangling (untagged) images, or with `dangling=false` every image no
    container uses, that pass `until` and `label`; Docker's {ImagesDeleted, SpaceReclaimed}."""
    unknown = set(filters) - PRUNE_FILTERS
    if unknown:
        raise InvalidArgument(f"invalid filter '{sorted(unknown)[0]}'")
    dangling_only = _dangling(filters.get("dangling"))
    until = until_filter(filters.get("until"), time.time())
    layer_sizes = {row["diff_id"]: row["size"] for row in store.db.query("SELECT diff_id, size FROM layers")}
    deleted, reclaimed = [], 0
    for summary in store.list_images():
        if dangling_only and summary["RepoTags"]:
            continue
        if until is not None and summary["Created"] >= until:
            continue
        if not _labels_pass(filters, summary["Labels"] or {}):
            continue
        if in_use(summary["Id"]):
            continue
        try:
            result = store.remove(summary["Id"], True, in_use)
        except Exception:  # gone meanwhile, or used by a container created meanwhile
            continue
        deleted += result
        reclaimed += sum(layer_sizes.get(item["Deleted"], 0) for item in result if "Deleted" in item)
    return {"ImagesDeleted": deleted or None, "SpaceReclaimed": reclaimed}


def _dangling(values) -> bool:
    if not values:
        return True
    value = values[-1].lower()
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise InvalidArgument(f"invalid filter 'dangling={values[-1]}'")


def _labels_pass(filters: dict, labels: dict) -> bool:
    from minictr.spec.filters import labels_match

    if not labels_match(filters.get("label"), labels):
        return False
    if filters.get("label!") and any(labels_match([item], labels) for item in filters["label!"]):
        return False
    return True


def disk_usage(store, containers) -> tuple[int, list[dict]]:
    """(LayersSize, Images) of GET /system/df: each image with how many containers use it and
    how much of it other images share."""
    images = store.list_images()
    rows = store.db.query("SELECT il.image_id, il.diff_id, l.size FROM image_layers il JOIN layers l USING (diff_id)")
    users_of_layer: dict[str, set] = {}
    layers_of_image: dict[str, dict] = {}
    for row in rows:
        users_of_layer.setdefault(row["diff_id"], set()).add(row["image_id"])
        layers_of_image.setdefault(row["image_id"], {})[row["diff_id"]] = row["size"]
    layers_size = sum(row["size"] for row in store.db.query("SELECT size FROM layers"))
    counts: dict[str, int] = {}
    for container in containers:
        counts[container.image_id] = counts.get(container.image_id, 0) + 1
    for image in images:
        layers = layers_of_image.get(image["Id"], {})
        image["SharedSize"] = sum(size for diff_id, size in layers.items() if len(users_of_layer[diff_id]) > 1)
        image["Containers"] = counts.get(image["Id"], 0)
    return layers_size, images
