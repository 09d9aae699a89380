"""A container's files and processes: cp, diff, export, top, port."""

import base64
import json
import os
import posixpath
import sys
import threading

import click

from minictr.cli.decorators import pass_ctx
from minictr.client import api_path
from minictr.errors import InvalidArgument, NotFound

_GO_MODE_DIR = 1 << 31
_GO_MODE_SYMLINK = 1 << 27


# ---- cp ---------------------------------------------------------------------------------------

@click.command()
@click.option("-a", "--archive", is_flag=True, help="Archive mode (copy all uid/gid information).")
@click.option("-L", "--follow-link", is_flag=True, help="Always follow symbol link in SRC_PATH.")
@click.option("-q", "--quiet", is_flag=True, help="Suppress progress output.")
@click.argument("source")
@click.argument("destination")
@pass_ctx
def cp(ctx, archive, follow_link, quiet, source, destination):
    """Copy files/folders between a container and the local filesystem.

    \b
    minictr cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-
    minictr cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH
    """
    src_container, src_path = _split_cp_arg(source)
    dst_container, dst_path = _split_cp_arg(destination)
    if src_container and dst_container:
        raise InvalidArgument("copying between containers is not supported")
    if not src_container and not dst_container:
        raise InvalidArgument("must specify at least one container source")
    if src_container:
        _copy_from_container(ctx.client, src_container, src_path, dst_path, follow_link)
    else:
        _copy_to_container(ctx.client, src_path, dst_container, dst_path, follow_link, archive)


def _split_cp_arg(arg):
    """(container, path) of `CONTAINER:PATH`, or (None, arg) for a local path: Docker reads an
    argument that starts with `/` or `.` as local, whatever colons follow."""
    if arg.startswith(("/", ".")) or ":" not in arg:
        return None, arg
    container, path = arg.split(":", 1)
    if not container:
        return None, arg
    return container, path


def _archive_url(container):
    return api_path("/containers/{}/archive", container)


def _path_stat(response):
    encoded = response.headers.get("x-docker-container-path-stat")
    if not encoded:
        raise InvalidArgument("the daemon sent no path stat")
    return json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))


def _stat_in_container(client, container, path):
    return _path_stat(client.request("HEAD", _archive_url(container), {"path": path}))


def _copy_from_container(client, container, src_path, dst_path, follow_link):
    rebase_name = None
    if follow_link:
        path_stat = _stat_in_container(client, container, src_path)
        if path_stat["mode"] & _GO_MODE_SYMLINK and path_stat["linkTarget"]:
            rebase_name = posixpath.basename(src_path.rstrip("/")) or None
            src_path = path_stat["linkTarget"]
    response = client.stream("GET", _archive_url(container), {"path": src_path})
    path_stat = _path_stat(response)
    if dst_path == "-":
        out = sys.stdout.buffer
        for chunk in response.chunks():
            out.write(chunk)
        out.flush()
        return
    tar_base = path_stat["name"] if path_stat["name"] != "/" else "."
    src_base = rebase_name or tar_base
    src_is_dir = bool(path_stat["mode"] & _GO_MODE_DIR)
    extract_dir, new_base = _local_destination(dst_path, src_is_dir)
    _extract_locally(_Chunks(response.chunks()), extract_dir, tar_base, new_base or src_base)


def _local_destination(dst_path, src_is_dir):
    """Where to extract and under which name (None: the source's), as Docker's PrepareArchiveCopy."""
    asserts_dir = dst_path.endswith("/") or posixpath.basename(dst_path) == "."
    resolved = os.path.realpath(dst_path) if os.path.lexists(dst_path) else dst_path
    if os.path.isdir(resolved):
        return resolved, None
    if os.path.exists(resolved):
        if src_is_dir:
            raise InvalidArgument(f"cannot copy a directory to a file: {dst_path}")
        return os.path.dirname(os.path.abspath(resolved)), os.path.basename(resolved)
    parent = os.path.dirname(os.path.abspath(resolved.rstrip("/") or "/"))
    if not os.path.isdir(parent):
        raise NotFound(f"destination directory {parent} does not exist")
    if not src_is_dir and asserts_dir:
        raise NotFound(f"destination directory {dst_path} does not exist")
    return parent, os.path.basename(os.path.normpath(resolved))


def _extract_locally(stream, directory, old_base, new_base):
    """Extract a tar from a container here, as the docker CLI's CopyTo does (the archive's owners
    not kept): nothing is written outside `directory` or through a symlink, whether the tar
    planted it or it was there; symlinks themselves are copied as they are."""
    import tarfile

    def rename(name):
        if old_base == new_base:
            return name
        stripped = name.rstrip("/")
        if stripped == old_base:
            return new_base
        if stripped.startswith(old_base + "/"):
            return new_base + name[len(old_base):]
        return name

    directory = os.path.realpath(directory)
    directories = []
    try:
        with _unowned_tar().open(fileobj=stream, mode="r|*") as tar:
            for member in tar:
                member.name = _inside(directory, rename(member.name.lstrip("/")))
                if member.islnk():
                    member.linkname = _inside(directory, rename(member.linkname.lstrip("/")))
                if member.isdir():
                    directories.append(member)  # its mode and times at the end: it may be read-only
                tar.extract(member, directory, set_attrs=not member.isdir())
            for member in sorted(directories, key=lambda m: m.name, reverse=True):
                target = os.path.join(directory, member.name)
                tar.utime(member, target)
                tar.chmod(member, target)
    except PermissionError as e:
        raise InvalidArgument(f"cannot write to {directory}: {e.strerror}") from None
    except tarfile.TarError as e:
        raise InvalidArgument(f"the archive is corrupt: {e}") from None


def _inside(directory, name):
    """NAME, if it leads to a place inside DIRECTORY without leaving it through `..` or a symlink."""
    if os.path.commonpath([directory, os.path.realpath(os.path.join(directory, name))]) != directory:
        raise InvalidArgument(f"archive entry {name!r} would be written outside {directory}")
    return name


def _unowned_tar():
    import tarfile

    class UnownedTar(tarfile.TarFile):
        """Extracts with the user's own uid and gid, whoever owned the files in the container."""

        def chown(self, tarinfo, targetpath, numeric_owner):
            pass

    return UnownedTar


class _Chunks:
    """A reader over an iterator of bytes (the response body as it arrives)."""

    def __init__(self, chunks):
        self._chunks = chunks
        self._buffer = b""

    def read(self, size=-1):
        while size is None or size < 0 or len(self._buffer) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        if size is None or size < 0:
            data, self._buffer = self._buffer, b""
        else:
            data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def readable(self):
        return True


def _copy_to_container(client, src_path, container, dst_path, follow_link, archive):
    query = {"path": dst_path, "noOverwriteDirNonDir": "true", "copyUIDGID": "true" if archive else None}
    if src_path == "-":
        # A tar on stdin goes to a directory as it is.
        client.request("PUT", _archive_url(container), query, sys.stdin.buffer)
        return
    local, src_base = _local_source(src_path, follow_link)
    src_is_dir = os.path.isdir(local) and not os.path.islink(local)
    dst_dir, name = _container_destination(client, container, dst_path, src_is_dir)
    query["path"] = dst_dir
    body = _local_tar(local, name or src_base, archive)
    try:
        client.request("PUT", _archive_url(container), query, body)
    finally:
        body.close()


def _local_source(src_path, follow_link):
    """(the local path to archive, the name of its top entry), as Docker's CopyInfoSourcePath:
    symlinks before the last component are followed, the last one only with -L."""
    if not os.path.lexists(src_path):
        raise NotFound(f"lstat {src_path}: no such file or directory")
    current_dir = posixpath.basename(src_path) == "."
    if follow_link:
        local = os.path.realpath(src_path)
    else:
        head, tail = os.path.split(src_path.rstrip("/") or "/")
        local = os.path.join(os.path.realpath(head or "."), tail)
    name = "." if current_dir else os.path.basename(os.path.normpath(src_path)) or "."
    return local, name


def _container_destination(client, container, dst_path, src_is_dir):
    """(the directory to extract into, the name for the top entry), as Docker's PrepareArchiveCopy."""
    try:
        path_stat = _stat_in_container(client, container, dst_path)
    except NotFound:
        path_stat = None
    if path_stat and path_stat["mode"] & _GO_MODE_SYMLINK:
        # The destination is a symlink: copy to where it leads (resolved inside the container).
        dst_path = path_stat["linkTarget"]
        try:
            path_stat = _stat_in_container(client, container, dst_path)
        except NotFound:
            path_stat = None
    asserts_dir = dst_path.endswith("/") or posixpath.basename(dst_path) == "."
    if path_stat and path_stat["mode"] & _GO_MODE_DIR:
        return dst_path, None
    if path_stat and src_is_dir:
        raise InvalidArgument(f"cannot copy a directory to a file: {dst_path}")
    if not path_stat and not src_is_dir and asserts_dir:
        raise NotFound(f"destination directory {dst_path} does not exist in container {container}")
    parent, base = posixpath.split(posixpath.normpath("/" + dst_path))
    return parent or "/", base


def _local_tar(path, arcname, archive):
    """A reader of a tar of `path` made in a thread as it is read (never whole in memory).
    Without -a the entries belong to root in the container, as Docker's do."""
    import tarfile

    read_fd, write_fd = os.pipe()

    def owner(info):
        if not archive:
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
        return info

    def produce():
        try:
            with os.fdopen(write_fd, "wb") as out, tarfile.open(fileobj=out, mode="w|",
                                                               format=tarfile.PAX_FORMAT) as tar:
                tar.add(path, arcname=arcname, recursive=True, filter=owner)
        except OSError:
            pass  # the reader went away (the daemon refused the copy): it reports why

    threading.Thread(target=produce, daemon=True).start()
    return os.fdopen(read_fd, "rb")


# ---- diff, export ------------------------------------------------------------------------------

_KINDS = {0: "C", 1: "A", 2: "D"}


@click.command()
@click.argument("container")
@pass_ctx
def diff(ctx, container):
    """Inspect changes to files or directories on a container's filesystem."""
    for change in ctx.client.get(api_path("/containers/{}/changes", container)) or []:
        click.echo(f"{_KINDS.get(change['Kind'], '?')} {change['Path']}")


@click.command()
@click.option("-o", "--output", help="Write to a file, instead of STDOUT.")
@click.argument("container")
@pass_ctx
def export(ctx, output, container):
    """Export a container's filesystem as a tar archive."""
    if not output and sys.stdout.isatty():
        raise InvalidArgument("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    response = ctx.client.stream("GET", api_path("/containers/{}/export", container))
    if output:
        temporary = f"{output}.tmp-{os.getpid()}"
        try:
            with open(temporary, "wb") as out:
                for chunk in response.chunks():
                    out.write(chunk)
            os.rename(temporary, output)
        except BaseException:
            if os.path.exists(temporary):
                os.unlink(temporary)
            raise
        return
    out = sys.stdout.buffer
    for chunk in response.chunks():
        out.write(chunk)
    out.flush()


# ---- top, port ---------------------------------------------------------------------------------

@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("container")
@click.argument("ps_options", nargs=-1, type=click.UNPROCESSED)
@pass_ctx
def top(ctx, container, ps_options):
    """Display the running processes of a container (ps options after the name, -ef by default)."""
    query = {"ps_args": " ".join(ps_options)} if ps_options else None
    result = ctx.client.get(api_path("/containers/{}/top", container), query)
    click.echo(_top_table(result["Titles"], result["Processes"] or []))


def _top_table(titles, rows):
    """As Docker's tabwriter prints it: cells at least 20 wide, 3 spaces of padding."""
    widths = [max(20, max(len(str(cell)) for cell in column) + 3) for column in zip(titles, *rows)]
    lines = []
    for row in [titles, *rows]:
        cells = [str(cell).ljust(width) for cell, width in zip(row[:-1], widths)]
        lines.append("".join(cells) + str(row[-1]))
    return "\n".join(lines)


@click.command()
@click.argument("container")
@click.argument("private_port", required=False)
@pass_ctx
def port(ctx, container, private_port):
    """List port mappings or a specific mapping for the container (PRIVATE_PORT[/PROTO])."""
    info = ctx.client.get(api_path("/containers/{}/json", container))
    ports = (info.get("NetworkSettings") or {}).get("Ports") or {}
    if private_port:
        number, _, proto = private_port.partition("/")
        key = f"{number}/{proto or 'tcp'}"
        bindings = ports.get(key)
        if not bindings:
            click.echo(f"Error: No public port '{private_port}' published for {container}", err=True)  # as given, like docker
            sys.exit(1)
        for binding in bindings:
            click.echo(_host_address(binding))
        return
    for key in sorted(ports, key=_port_order):
        for binding in ports[key] or []:
            click.echo(f"{key} -> {_host_address(binding)}")


def _host_address(binding):
    from minictr.cli.container_format import host_address

    return host_address(binding.get("HostIp") or "0.0.0.0", binding["HostPort"])


def _port_order(key):
    number, _, proto = key.partition("/")
    return (int(number) if number.isdigit() else 0, proto)
