"""The click options `run` and `create` share (their body is built in cli/bodies.py), and
Docker's `--flag=false` forms for click."""

import click

RUN_OPTIONS = [
    click.option("--name", help="Assign a name to the container."),
    click.option("-d", "--detach", is_flag=True, help="Run in the background and print the container's ID."),
    click.option("-i", "--interactive", is_flag=True, help="Keep stdin open and pass ours through."),
    click.option("-t", "--tty", is_flag=True, help="Allocate a pseudo-TTY."),
    click.option("--detach-keys", help="Key sequence that detaches (default ctrl-p,ctrl-q)."),
    click.option("--sig-proxy/--no-sig-proxy", default=True,
                 help="Proxy the signals we receive to the container (without a tty)."),
    click.option("-e", "--env", multiple=True, help="Set an environment variable (K=V, or K to pass ours)."),
    click.option("--env-file", multiple=True, help="Read environment variables from a file."),
    click.option("-l", "--label", multiple=True, help="Set a label (K=V)."),
    click.option("--label-file", multiple=True, help="Read labels from a file."),
    click.option("-w", "--workdir", help="Working directory inside the container."),
    click.option("-u", "--user", help="UID[:GID] or name[:group] inside the container."),
    click.option("-h", "--hostname", help="Container host name."),
    click.option("--entrypoint", help="Overwrite the image's entrypoint."),
    click.option("--rm", "auto_remove", is_flag=True, help="Remove the container when it exits."),
    click.option("--restart", default="no", help="Restart policy: no, on-failure[:N], always, unless-stopped."),
    click.option("--init", is_flag=True, help="Run an init inside the container that forwards signals and reaps."),
    click.option("--stop-signal", help="Signal that stops the container (default SIGTERM, or the image's)."),
    click.option("--stop-timeout", type=int, help="Seconds to wait before killing the container at stop."),
    click.option("--cidfile", help="Write the container ID to this file."),
    click.option("--log-driver", default="json-file", help="Logging driver: json-file or none."),
    click.option("--log-opt", multiple=True, help="Log driver option (max-size=10m, max-file=3)."),
    click.option("--network", "--net", "network", default="default",
                 help="Network: bridge (default), a network's name, none, host, or container:NAME."),
    click.option("--ip", help="IPv4 address on the network (user-defined networks)."),
    click.option("--link-local-ip", multiple=True, help="Extra address of the container's interface on the network."),
    click.option("--mac-address", help="MAC address of the container's interface on the network."),
    click.option("--network-alias", multiple=True, help="A network-scoped alias (user-defined networks)."),
    click.option("--add-host", multiple=True, help="Add a line to /etc/hosts (HOST:IP)."),
    click.option("--link", multiple=True, help="Add a link to another container (NAME[:ALIAS])."),
    click.option("--dns", multiple=True, help="Set a DNS server of the container."),
    click.option("-p", "--publish", multiple=True,
                 help="Publish a container's port: [IP:][HOST:]CONTAINER[/tcp|/udp] (no HOST: a free port)."),
    click.option("-P", "--publish-all", is_flag=True, help="Publish every exposed port on a free host port."),
    click.option("--expose", multiple=True, help="Expose a port or a range (80, 8000-8010/udp)."),
    click.option("-v", "--volume", multiple=True,
                 help="Bind mount a volume: NAME:/path[:ro], /host/path:/path[:ro], or /path (anonymous)."),
    click.option("--mount", multiple=True,
                 help="Attach a mount: type=volume|bind|tmpfs,source=…,target=…[,readonly][,tmpfs-size=…]."),
    click.option("--tmpfs", multiple=True, help="Mount a tmpfs: /path[:options]."),
    click.option("--volumes-from", multiple=True, help="Mount the volumes of a container: CTR[:ro|rw]."),
    click.option("--read-only", is_flag=True, help="Mount the container's root filesystem read-only."),
    click.option("--cap-add", multiple=True, help="Add a Linux capability (NET_ADMIN, CAP_SYS_TIME, ALL)."),
    click.option("--cap-drop", multiple=True, help="Drop a Linux capability (CHOWN, ALL)."),
    click.option("--privileged", is_flag=True,
                 help="Every capability, no masked paths, read-write /sys, the host's devices."),
    click.option("--device", multiple=True,
                 help="Add a host device: HOST[:CONTAINER][:PERMISSIONS] (permissions: r, w, m; default rwm)."),
    click.option("--device-cgroup-rule", multiple=True,
                 help="Allow devices in the container's device cgroup: 'TYPE MAJOR:MINOR ACCESS' (c 1:3 rwm)."),
    click.option("--security-opt", multiple=True,
                 help="Security option: seccomp=PROFILE.json|unconfined, no-new-privileges."),
    click.option("-m", "--memory", help="Memory limit (6m at least; b, k, m, g units)."),
    click.option("--memory-swap", help="Memory plus swap limit; -1: unlimited swap."),
    click.option("--cpus", help="Number of CPUs (1.5)."),
    click.option("-c", "--cpu-shares", type=int, help="CPU shares (relative weight)."),
    click.option("--cpu-period", type=int, help="CPU CFS period (microseconds)."),
    click.option("--cpu-quota", type=int, help="CPU CFS quota (microseconds)."),
    click.option("--cpuset-cpus", help="CPUs the container may run on (0-3, 0,1)."),
    click.option("--pids-limit", type=int, help="Process (task) limit; -1: unlimited."),
    click.option("--ulimit", multiple=True, help="Ulimit: name=soft[:hard] (nofile=1024:2048)."),
    click.option("--shm-size", help="Size of /dev/shm (default 64m)."),
    click.option("--memory-swappiness", type=int, help="Tune the container's memory swappiness (0 to 100; cgroup v1)."),
    click.option("--oom-kill-disable", is_flag=True, help="Disable the OOM killer (cgroup v1)."),
    click.option("--oom-score-adj", type=int, help="Tune the host's OOM preferences (-1000 to 1000)."),
    click.option("--pid", help="PID namespace: host or container:NAME (default: its own)."),
    click.option("--ipc", help="IPC mode: private, shareable, host, none or container:NAME."),
    click.option("--uts", help="UTS namespace: host (default: its own)."),
    click.option("--cgroupns", help="Cgroup namespace: private (default) or host."),
    click.option("--userns", help="User namespace: host (default: the daemon's choice)."),
    click.option("--group-add", multiple=True, help="Add an additional group to join (name or number)."),
    click.option("--sysctl", multiple=True, help="Set a namespaced kernel parameter (net.ipv4.ip_forward=1)."),
    click.option("--health-cmd", help="Command to run to check health (through /bin/sh -c)."),
    click.option("--health-interval", help="Time between running the check (ms|s|m|h) (default 30s)."),
    click.option("--health-timeout", help="Maximum time to allow one check to run (ms|s|m|h) (default 30s)."),
    click.option("--health-retries", type=int, help="Consecutive failures needed to report unhealthy (default 3)."),
    click.option("--health-start-period",
                 help="Start period for the container to initialize before failures count (ms|s|m|h) (default 0s)."),
    click.option("--health-start-interval",
                 help="Time between running the check during the start period (ms|s|m|h) (default 5s)."),
    click.option("--no-healthcheck", is_flag=True, help="Disable any container-specified HEALTHCHECK."),
    click.option("--pull", default="missing", help="Pull the image before creating: missing, always or never."),
    click.option("--platform", help="Platform of the image to pull: os/arch[/variant]."),
    click.argument("image"),
    click.argument("command", nargs=-1, type=click.UNPROCESSED),
]

# Docker stops parsing options at the image name: `run IMG sh -c 'x'` passes -c to sh.
RUN_SETTINGS = {"allow_interspersed_args": False}

_TRUE, _FALSE = ("true", "1", "t"), ("false", "0", "f")


class DockerCommand(click.Command):
    """A command whose boolean flags also take Docker's `--flag=true|false` (`--sig-proxy=false`)."""

    def parse_args(self, ctx, args):
        return super().parse_args(ctx, docker_bools(self, args, ctx.allow_interspersed_args))


def docker_bools(command, args, interspersed=True):
    """`--flag=false` → `--no-flag` (or nothing when the flag is off by default), `--flag=true` →
    `--flag`, `-e=V` → `-e V`: only among the options, never in the container's command after
    the image."""
    options = {opt: p for p in command.params if isinstance(p, click.Option) for opt in p.opts}
    rewritten, i = [], 0
    while i < len(args):
        token = args[i]
        if token == "--" or not token.startswith("-") or token == "-":
            if not interspersed or token == "--":
                return rewritten + args[i:]
            rewritten.append(token)
        elif "=" in token:
            name, _, value = token.partition("=")
            param = options.get(name)
            if param is not None and param.is_flag and value.lower() in _TRUE + _FALSE:
                on = value.lower() in _TRUE
                rewritten += [name] if on else param.secondary_opts[:1]
            elif param is not None and not param.is_flag:
                rewritten += [name, value]  # `-e=K=V` is Docker's `-e K=V`
            else:
                rewritten.append(token)
        else:
            rewritten.append(token)
            param = options.get(token)
            if param is not None and not param.is_flag and i + 1 < len(args):
                rewritten.append(args[i + 1])  # the option's value, whatever it looks like
                i += 1
        i += 1
    return rewritten


def with_run_options(function):
    for option in reversed(RUN_OPTIONS):
        function = option(function)
    return function
