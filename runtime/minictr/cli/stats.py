"""stats: the containers' resource use, as Docker's table (or --format)."""

import sys
import threading
import time

import click

from minictr.cli.container_format import human_size
from minictr.cli.decorators import pass_ctx
from minictr.cli.template import TableHeader, render_rows, to_json
from minictr.client import api_path

DEFAULT_TABLE = ("table {{.ID}}\\t{{.Name}}\\t{{.CPUPerc}}\\t{{.MemUsage}}\\t{{.MemPerc}}\\t{{.NetIO}}\\t"
                 "{{.BlockIO}}\\t{{.PIDs}}")
_HEADERS = {"Container": "CONTAINER", "Name": "NAME", "ID": "CONTAINER ID", "CPUPerc": "CPU %",
            "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O", "BlockIO": "BLOCK I/O",
            "PIDs": "PIDS"}


@click.command()
@click.option("-a", "--all", "all_", is_flag=True, help="Show all containers (default shows just running).")
@click.option("--no-stream", is_flag=True, help="Print one sample and exit.")
@click.option("--no-trunc", is_flag=True, help="Do not truncate output.")
@click.option("--format", "format_", help="Format output using a Go template, or json.")
@click.argument("containers", nargs=-1)
@pass_ctx
def stats(ctx, all_, no_stream, no_trunc, format_, containers):
    """Display a live stream of container(s) resource usage statistics."""
    refs = list(containers) or [c["Id"] for c in ctx.client.get("/containers/json", {"all": 1 if all_ else None})]
    format_ = format_ or DEFAULT_TABLE
    if no_stream:
        samples = {ref: _sample(ctx.client, ref) for ref in refs}
        click.echo(render(refs, samples, format_, trunc=not no_trunc))
        return
    samples, lock = {}, threading.Lock()
    for ref in refs:
        threading.Thread(target=_follow, args=(ctx.client, ref, samples, lock), daemon=True).start()
    try:
        while True:
            time.sleep(1)
            with lock:
                text = render(refs, dict(samples), format_, trunc=not no_trunc)
            sys.stdout.write("\033[2J\033[H" + text + "\n")
            sys.stdout.flush()
    except KeyboardInterrupt:
        pass


def _sample(client, ref):
    return client.get(api_path("/containers/{}/stats", ref), {"stream": 0})


def _follow(client, ref, samples, lock):
    response = client.stream("GET", api_path("/containers/{}/stats", ref), {"stream": 1})
    for sample in response.json_lines():
        with lock:
            samples[ref] = sample


def render(refs, samples, format_, trunc=True):
    """The text `stats` prints for these samples (Docker's formatter)."""
    rows = [StatsRow(ref, samples[ref], trunc) for ref in refs if ref in samples]
    _, text = render_rows(format_, rows, _Header())
    return text.rstrip("\n")


class StatsRow:
    """One container's sample as `stats --format` templates see it (Docker's StatsEntry)."""

    template_fields = frozenset(_HEADERS)

    def __init__(self, ref, sample, trunc):
        self.ref, self.s, self.trunc = ref, sample, trunc

    @property
    def Container(self):
        return self.ref

    @property
    def Name(self):
        return (self.s.get("name") or "").lstrip("/") or "--"

    @property
    def ID(self):
        return self.s.get("id", "")[:12] if self.trunc else self.s.get("id", "")

    @property
    def CPUPerc(self):
        return f"{cpu_percent(self.s):.2f}%"

    @property
    def MemUsage(self):
        memory = self.s.get("memory_stats") or {}
        return f"{bytes_size(memory_usage(memory))} / {bytes_size(memory.get('limit') or 0)}"

    @property
    def MemPerc(self):
        memory = self.s.get("memory_stats") or {}
        limit = memory.get("limit") or 0
        return f"{memory_usage(memory) / limit * 100 if limit else 0:.2f}%"

    @property
    def NetIO(self):
        networks = (self.s.get("networks") or {}).values()
        rx, tx = sum(n.get("rx_bytes", 0) for n in networks), sum(n.get("tx_bytes", 0) for n in networks)
        return f"{human_size(rx)} / {human_size(tx)}"

    @property
    def BlockIO(self):
        entries = (self.s.get("blkio_stats") or {}).get("io_service_bytes_recursive") or []
        read = sum(e["value"] for e in entries if e.get("op", "").lower() == "read")
        write = sum(e["value"] for e in entries if e.get("op", "").lower() == "write")
        return f"{human_size(read)} / {human_size(write)}"

    @property
    def PIDs(self):
        return str((self.s.get("pids_stats") or {}).get("current") or 0)

    def to_json(self):
        return {name: getattr(self, name) for name in sorted(self.template_fields)}

    def template_string(self):
        return to_json(self)



def cpu_percent(sample):
    """Docker's: the container's share of the host's cpu time between the two samples, times the cpus."""
    cpu, pre = sample.get("cpu_stats") or {}, sample.get("precpu_stats") or {}
    cpu_delta = (cpu.get("cpu_usage") or {}).get("total_usage", 0) - (pre.get("cpu_usage") or {}).get("total_usage", 0)
    system_delta = (cpu.get("system_cpu_usage") or 0) - (pre.get("system_cpu_usage") or 0)
    cpus = cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get("percpu_usage") or [])
    if system_delta > 0 and cpu_delta > 0:
        return cpu_delta / system_delta * cpus * 100
    return 0.0


def memory_usage(memory):
    """Usage without the page cache Docker leaves out (inactive files)."""
    usage, stats = memory.get("usage") or 0, memory.get("stats") or {}
    inactive = stats.get("total_inactive_file", stats.get("inactive_file", 0))
    return usage - inactive if inactive < usage else usage


def bytes_size(n):
    """go-units BytesSize: binary units, 4 significant digits (`1.465MiB`)."""
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024:
            return f"{n:.4g}{unit}"
        n /= 1024
    return f"{n:.4g}EiB"


class _Header(TableHeader):
    titles = _HEADERS
