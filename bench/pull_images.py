#!/usr/bin/env python3
"""Build the `pull` part's test images as `docker save` tars, from the busybox rootfs tar.

usage: pull_images.py BB.TAR OUT_DIR [--big-mb 200] [--layers 10] [--layer-mb 10]

  OUT_DIR/big.tar    one layer: the busybox rootfs + /random.bin (--big-mb MB of random bytes)
  OUT_DIR/multi.tar  --layers layers: the busybox rootfs + /marker, then one layer of
                     /data/N.bin (--layer-mb MB of random bytes) each
Random data does not compress: the registry's blobs are as large as the layers. Layer 1 of each image
differs from busybox-local's layer, so nothing is already present in a store that has busybox-local.
"""

import argparse
import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

MTIME = 1700000000


def random_file(path: Path, mb: int) -> Path:
    with open(path, "wb") as f:
        for _ in range(mb):
            f.write(os.urandom(1 << 20))
    return path


def add_bytes(tar, name, data, mode=0o644):
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, MTIME
    tar.addfile(info, io.BytesIO(data))


def add_file(tar, name, path):
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = path.stat().st_size, 0o644, MTIME
    with open(path, "rb") as f:
        tar.addfile(info, f)


def add_dir(tar, name):
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, MTIME
    tar.addfile(info)


def base_layer(bb_tar: Path, out: Path, extra):
    """The busybox rootfs, plus what `extra(tar)` adds."""
    with tarfile.open(bb_tar) as source, tarfile.open(out, "w", format=tarfile.GNU_FORMAT) as tar:
        for member in source:
            tar.addfile(member, source.extractfile(member) if member.isfile() else None)
        extra(tar)
    return out


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def docker_archive(out: Path, layers: list, repo_tag: str) -> None:
    diff_ids = [sha256_file(layer) for layer in layers]
    config = json.dumps({
        "architecture": "amd64", "os": "linux", "created": "2026-11-27T00:00:00Z",
        "config": {"Cmd": ["sh"], "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": "2026-11-27T00:00:00Z", "created_by": f"bench layer {i}"} for i in range(len(layers))],
    }, separators=(",", ":")).encode()
    config_hex = hashlib.sha256(config).hexdigest()
    names = [f"{d.split(':')[1]}/layer.tar" for d in diff_ids]
    with tarfile.open(out, "w") as tar:
        for name, layer in zip(names, layers):
            add_file(tar, name, layer)
        add_bytes(tar, f"{config_hex}.json", config)
        add_bytes(tar, "manifest.json", json.dumps([{"Config": f"{config_hex}.json", "RepoTags": [repo_tag],
                                                      "Layers": names}]).encode())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("bb_tar", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--big-mb", type=int, default=200)
    parser.add_argument("--layers", type=int, default=10)
    parser.add_argument("--layer-mb", type=int, default=10)
    args = parser.parse_args()
    work = args.out / "work"
    work.mkdir(parents=True, exist_ok=True)

    rnd = random_file(work / "random.bin", args.big_mb)
    big = base_layer(args.bb_tar, work / "big-layer.tar", lambda tar: add_file(tar, "random.bin", rnd))
    rnd.unlink()
    docker_archive(args.out / "big.tar", [big], "bench-pull-big:latest")
    big.unlink()

    layers = [base_layer(args.bb_tar, work / "multi-0.tar",
                         lambda tar: add_bytes(tar, "marker", b"bench multi-layer image\n"))]
    for i in range(1, args.layers):
        rnd = random_file(work / "r.bin", args.layer_mb)
        layer = work / f"multi-{i}.tar"
        with tarfile.open(layer, "w", format=tarfile.GNU_FORMAT) as tar:
            add_dir(tar, "data")
            add_file(tar, f"data/{i}.bin", rnd)
        rnd.unlink()
        layers.append(layer)
    docker_archive(args.out / "multi.tar", layers, "bench-pull-multi:latest")
    for layer in layers:
        layer.unlink()
    work.rmdir()


if __name__ == "__main__":
    main()
