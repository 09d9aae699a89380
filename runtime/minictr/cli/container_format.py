"""`ps` output as Docker's formatter writes it: the default table, `-q`, `-s`, and `--format`
templates over the fields of Docker's ContainerContext."""

import time

from minictr.cli.template import TableHeader, Types, render_rows, to_json
from minictr.spec.times import human_duration

DEFAULT_TABLE = "table {{.ID}}\\t{{.Image}}\\t{{.Command}}\\t{{.RunningFor}}\\t{{.Status}}\\t{{.Ports}}\\t{{.Names}}"
QUIET = "{{.ID}}"

_HEADERS = {
    "ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
    "RunningFor": "CREATED", "Ports": "PORTS", "State": "STATE", "Status": "STATUS", "Size": "SIZE",
    "Names": "NAMES", "Labels": "LABELS", "Label": "LABEL", "Mounts": "MOUNTS", "Networks": "NETWORKS",
    "LocalVolumes": "LOCAL VOLUMES", "Platform": "PLATFORM",
}


def host_address(ip, port):
    """IP:PORT as Docker's CLI writes a published port, an IPv6 address in brackets."""
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def ps_format(format_, quiet, size):
    """The format `ps` uses, and whether it needs sizes from the daemon."""
    if not format_ or format_ == "table":
        format_ = QUIET if quiet else DEFAULT_TABLE + ("\\t{{.Size}}" if size else "")
    elif quiet:
        format_ = QUIET
    return format_, size or ".Size" in format_


def render_ps(containers, format_, trunc):
    """The text `ps` prints for these API summaries (no final newline)."""
    table, text = render_rows(format_, [ContainerRow(c, trunc) for c in containers], _Header())
    if not table and not containers:
        return None
    return text.rstrip("\n")


def short_id(text):
    return text.split(":", 1)[-1][:12] if text.startswith("sha256:") else text[:12]


def ellipsis(text, width):
    return text if len(text) <= width else text[:width - 1] + "…"


def go_quote(text):
    """Go's strconv.Quote for the usual characters."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ord(ch) == 0x7f:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def human_size(n, precision=3):
    """go-units HumanSizeWithPrecision(n, PRECISION): decimal units (HumanSize is precision 4)."""
    n = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB"):
        if n < 1000:
            return f"{n:.{precision}g}{unit}"
        n /= 1000
    return f"{n:.{precision}g}YB"


def go_time(unix_seconds):
    """Go's time.Time.String() in local time: `2026-11-27 20:20:44 +0000 UTC`."""
    local = time.localtime(unix_seconds)
    return time.strftime("%Y-%m-%d %H:%M:%S %z %Z", local)


def familiar_image(image, image_id, trunc):
    if not image:
        return "<no image>"
    if not trunc:
        return image
    if short_id(image_id) == short_id(image):
        return short_id(image)
    name = image.split("@", 1)[0]
    for prefix in ("docker.io/library/", "index.docker.io/library/", "docker.io/", "index.docker.io/"):
        if name.startswith(prefix):
            name = name[len(prefix):]
            break
    return name


class ContainerRow:
    """One container as `ps --format` templates see it (Docker's ContainerContext)."""

    template_fields = frozenset(_HEADERS)
    template_type = "*formatter.ContainerContext"

    def __init__(self, summary, trunc=True):
        self.c = summary
        self.trunc = trunc

    @property
    def ID(self):
        return short_id(self.c["Id"]) if self.trunc else self.c["Id"]

    @property
    def Names(self):
        names = [n[1:] if n.startswith("/") else n for n in self.c.get("Names") or []]
        if self.trunc:
            names = [n for n in names if "/" not in n][:1] or names
        return ",".join(names)

    @property
    def Image(self):
        return familiar_image(self.c.get("Image", ""), self.c.get("ImageID", ""), self.trunc)

    @property
    def Command(self):
        command = self.c.get("Command", "")
        return go_quote(ellipsis(command, 20) if self.trunc else command)

    @property
    def CreatedAt(self):
        return go_time(self.c["Created"])

    @property
    def RunningFor(self):
        return human_duration(time.time() - self.c["Created"]) + " ago"

    @property
    def Ports(self):
        ports = []
        for p in self.c.get("Ports") or []:
            if p.get("PublicPort"):
                ports.append(f"{host_address(p.get('IP', '0.0.0.0'), p['PublicPort'])}->{p['PrivatePort']}/{p['Type']}")
            else:
                ports.append(f"{p['PrivatePort']}/{p['Type']}")
        return ", ".join(ports)

    @property
    def State(self):
        return self.c.get("State", "")

    @property
    def Status(self):
        return self.c.get("Status", "")

    @property
    def Size(self):
        size_rw = human_size(self.c.get("SizeRw") or 0)
        if self.c.get("SizeRootFs"):
            return f"{size_rw} (virtual {human_size(self.c['SizeRootFs'])})"
        return size_rw

    @property
    def Labels(self):
        labels = self.c.get("Labels") or {}
        return ",".join(f"{k}={labels[k]}" for k in sorted(labels))

    def Label(self, name):
        return (self.c.get("Labels") or {}).get(name, "")

    @property
    def Mounts(self):
        names = []
        for mount in self.c.get("Mounts") or []:
            name = mount.get("Name") or mount.get("Source", "")
            names.append(ellipsis(name, 15) if self.trunc and mount.get("Name") else name)
        return ",".join(names)

    @property
    def Networks(self):
        return ",".join(sorted((self.c.get("NetworkSettings") or {}).get("Networks") or {}))

    @property
    def LocalVolumes(self):
        return str(sum(1 for m in self.c.get("Mounts") or [] if m.get("Driver") == "local"))

    @property
    def Platform(self):
        return None

    def to_json(self):
        return {name: getattr(self, name) for name in sorted(self.template_fields) if name != "Label"}

    def template_string(self):
        return to_json(self)


class _Header(TableHeader):
    titles = _HEADERS

    def Label(self, name):
        return name


# The Go types behind `docker inspect`'s JSON (container and image), for templates.
INSPECT_TYPES = Types(
    slices=("Args", "ExecIDs", "Binds", "CapAdd", "CapDrop", "ExtraHosts", "GroupAdd", "Links", "SecurityOpt",
            "VolumesFrom", "DeviceCgroupRules", "DeviceRequests", "Dns", "DnsOptions", "DnsSearch", "Mounts",
            "MaskedPaths", "ReadonlyPaths", "ConsoleSize", "Cmd", "Entrypoint", "Env", "OnBuild", "Shell",
            "RepoTags", "RepoDigests", "Layers", "Ulimits", "Devices", "BlkioWeightDevice", "Aliases",
            "DNSNames", "Links"),
    maps=("Labels", "Volumes", "ExposedPorts", "Ports", "PortBindings", "Networks", "Sysctls", "Tmpfs",
          "StorageOpt", "Annotations", "Config", "DriverOpts"),
    structs=("LogConfig", "RestartPolicy", "GraphDriver", "RootFS", "Metadata", "Data"),
    pointers=("State", "Config", "HostConfig", "NetworkSettings", "ContainerConfig", "Health"),
)
