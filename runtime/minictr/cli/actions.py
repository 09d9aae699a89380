"""What the hot container commands do once their arguments are parsed: run, create, start,
stop, restart, kill, rm, exec, ps and wait. The click commands (cli/containers.py, cli/exec.py) and the
click-free fast path (cli/fast.py) both call these, with the same keyword arguments, so the
two paths cannot drift apart. No click here."""

import sys

from minictr.cli.context import each, echo
from minictr.client import api_path
from minictr.errors import InvalidArgument, MinictrError


def _exits_125(action):
    """Docker's run and create exit 125 when they fail themselves (the container's own failures
    have their codes: 126, 127, or the container's exit status); every other command exits 1."""

    def act(*args, **kwargs):
        try:
            return action(*args, **kwargs)
        except MinictrError as e:
            if not hasattr(e, "exit_code"):
                e.exit_code = 125
            raise

    act.__doc__ = action.__doc__
    return act


@_exits_125
def run(ctx, name, **options):
    """Create and run a container; exits with its exit code (or prints its id with -d)."""
    client = ctx.client
    tty, interactive = options["tty"], options["interactive"]
    if not options["detach"]:
        check_attachable(tty, interactive, options["detach_keys"])
    container_id = _create(ctx, name, options)
    if options["detach"]:
        _start_or_exit(client, container_id)
        echo(container_id)
        return
    condition = "removed" if options["auto_remove"] else "next-exit"
    _attach_and_start(client, container_id, tty=tty, stdin=interactive, detach_keys=options["detach_keys"],
                      condition=condition, sig_proxy=options["sig_proxy"])


@_exits_125
def create(ctx, name, **options):
    """Create a container without starting it; prints its id."""
    echo(_create(ctx, name, options))


def _create(ctx, name, options):
    """Create the container (and its --cidfile); returns its id."""
    from minictr.cli.bodies import check_cidfile, create_body, write_cidfile

    check_cidfile(options["cidfile"])
    body = create_body(options)
    created = _create_pulling(ctx, name, body, options)
    container_id = created["Id"]
    for warning in created.get("Warnings") or []:
        print(f"WARNING: {warning}", file=sys.stderr)
    if options["cidfile"]:
        write_cidfile(options["cidfile"], container_id)
    return container_id


def _create_pulling(ctx, name, body, options):
    """POST /containers/create, pulling the image first as `--pull` says (Docker's words on stderr)."""
    from minictr.errors import NotFound

    policy = options.get("pull") or "missing"
    if policy not in ("missing", "always", "never"):
        raise InvalidArgument(f"invalid pull option: '{policy}': must be one of \"always\", \"missing\" or \"never\"")
    if policy == "always":
        _pull(ctx, options)
    try:
        return ctx.client.post("/containers/create", {"name": name}, body).json()
    except NotFound as e:
        if policy != "missing" or not str(e).startswith("No such image"):
            raise
    from minictr.spec import reference as references

    print(f"Unable to find image '{references.parse(options['image']).familiar()}' locally", file=sys.stderr,
          flush=True)
    _pull(ctx, options)
    return ctx.client.post("/containers/create", {"name": name}, body).json()


def _pull(ctx, options):
    from minictr.cli.pull import pull_image

    pull_image(ctx.client, options["image"], platform=options.get("platform"), out=sys.stderr, announce=False)


def start(ctx, attach, interactive, detach_keys, sig_proxy, containers):
    if not (attach or interactive):
        each_container(containers, lambda ref: ctx.client.post(api_path("/containers/{}/start", ref)))
        return
    if len(containers) > 1:
        raise InvalidArgument("you cannot start and attach multiple containers at once")
    info = ctx.client.get(api_path("/containers/{}/json", containers[0]))
    tty, stdin = info["Config"]["Tty"], interactive and info["Config"]["OpenStdin"]
    check_attachable(tty, stdin, detach_keys)
    condition = "removed" if info["HostConfig"].get("AutoRemove") else "next-exit"
    _attach_and_start(ctx.client, info["Id"], tty=tty, stdin=stdin, detach_keys=detach_keys, condition=condition,
                      sig_proxy=sig_proxy)


def stop(ctx, timeout, signal_, containers):
    query = {"t": timeout, "signal": signal_}
    each_container(containers, lambda ref: ctx.client.post(api_path("/containers/{}/stop", ref), query))


def restart(ctx, timeout, signal_, containers):
    query = {"t": timeout, "signal": signal_}
    each_container(containers, lambda ref: ctx.client.post(api_path("/containers/{}/restart", ref), query))


def kill(ctx, signal_, containers):
    each_container(containers, lambda ref: ctx.client.post(api_path("/containers/{}/kill", ref), {"signal": signal_}))


def rm(ctx, force, containers, volumes=False, link=False):
    query = {"force": int(force), "v": int(volumes), **({"link": 1} if link else {})}
    each_container(containers, lambda ref: ctx.client.delete(api_path("/containers/{}", ref), query))


def ps(ctx, all_, filters, format_, last, latest, no_trunc, quiet, size):
    from minictr.cli.container_format import ps_format, render_ps
    from minictr.cli.filters import filters_query

    if quiet and format_ and format_ != "table":
        echo("WARNING: Ignoring custom format, because both --format and --quiet are set.", err=True)
    format_, size = ps_format(format_, quiet, size)
    limit = 1 if latest and last == -1 else last
    query = {"all": int(all_) if all_ else None, "limit": limit if limit > 0 else None,
             "size": 1 if size else None, "filters": filters_query(filters)}
    text = render_ps(ctx.client.get("/containers/json", query), format_, trunc=not no_trunc)
    if text is not None:
        echo(text)


def wait(ctx, containers):
    for ref in containers:
        echo(ctx.client.stream("POST", api_path("/containers/{}/wait", ref)).json()["StatusCode"])


def exec_(ctx, container, command, detach, interactive, tty, env, env_file, workdir, user, privileged=False):
    """Run a command in a running container; exits with the command's exit code."""
    from minictr.cli.streams import stream_attached

    client = ctx.client
    body = _exec_body(command, detach, interactive, tty, env, env_file, workdir, user)
    if privileged:
        body["Privileged"] = True
    try:
        exec_id = client.post(api_path("/containers/{}/exec", container), None, body).json()["Id"]
        if detach:
            client.post(api_path("/exec/{}/start", exec_id), None, {"Detach": True, "Tty": tty})
            return
        sock, early = client.hijack(api_path("/exec/{}/start", exec_id))
    except MinictrError as e:
        if not hasattr(e, "exit_code"):
            e.exit_code = 1  # docker exec's status for an error from the daemon
        raise
    if stream_attached(client, api_path("/exec/{}/resize", exec_id), sock, early, tty=tty, stdin=interactive):
        return  # detached with ctrl-p ctrl-q: the command runs on
    sys.exit(client.get(api_path("/exec/{}/json", exec_id))["ExitCode"] or 0)


def _exec_body(command, detach, interactive, tty, env, env_file, workdir, user):
    from minictr.cli.bodies import env_entry, read_kv_file

    entries = [entry for path in env_file for entry in read_kv_file(path, from_environ=True)]
    entries += [env_entry(e) for e in env]
    body = {"AttachStdin": interactive and not detach, "AttachStdout": not detach,
            "AttachStderr": not detach, "Tty": tty, "Detach": detach, "Cmd": list(command),
            "Env": [e for e in entries if "=" in e]}
    if tty:
        from minictr.cli.terminal import terminal_size  # (it imports signal and threading)

        if size := terminal_size():
            body["ConsoleSize"] = list(size)
    if workdir:
        body["WorkingDir"] = workdir
    if user:
        body["User"] = user
    return body


def check_attachable(tty, stdin, detach_keys):
    """What Docker's CLI refuses before it creates anything: bad detach keys, and a tty's
    stdin that is no terminal."""
    import os

    if detach_keys:
        from minictr.spec.detach_keys import parse

        parse(detach_keys)
    if tty and stdin and not os.isatty(0):
        error = MinictrError("the input device is not a TTY")
        error.exit_code = 1
        raise error


def _attach_and_start(client, container_id, *, tty, stdin, detach_keys, condition, sig_proxy):
    """Attach, start, and stream until the container ends (exit with its status) or the user
    detaches (return: exit 0, the container runs on). Without a tty, the signals we get go to
    the container (Docker's --sig-proxy)."""
    from minictr.cli.streams import proxy_signals, stream_attached

    sock, early = client.hijack(api_path("/containers/{}/attach", container_id),
                                {"stream": 1, "stdin": int(stdin), "stdout": 1, "stderr": 1,
                                 "detachKeys": detach_keys})
    waiter = client.stream("POST", api_path("/containers/{}/wait", container_id), {"condition": condition})
    _start_or_exit(client, container_id)
    if sig_proxy and not tty:
        proxy_signals(client.socket_path, container_id)
    if stream_attached(client, api_path("/containers/{}/resize", container_id), sock, early, tty=tty, stdin=stdin,
                       detach_keys=detach_keys):
        return
    sys.exit(waiter.json()["StatusCode"])


def _start_or_exit(client, container_id):
    try:
        client.post(api_path("/containers/{}/start", container_id))
    except MinictrError as e:
        e.exit_code = _start_exit_code(str(e))
        raise


def _start_exit_code(message):
    """Docker's exit codes when a container cannot start: 127 no such command, 126 not executable."""
    if "executable file not found" in message or "no such file or directory" in message.lower():
        return 127
    if "permission denied" in message.lower():
        return 126
    return 125


def each_container(refs, request):
    """Send `request` for each container named, printing each name as it succeeds."""

    def act(ref):
        request(ref)
        echo(ref)

    if not each(refs, act):
        sys.exit(1)
