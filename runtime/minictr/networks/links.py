"""Legacy links of the default bridge (`--link NAME[:ALIAS]`, HostConfig.Links), as Docker keeps
them: registered at create from the linking container to its target by id (so a rename keeps
them), each alias once per container (the first one wins, as in Docker). What they give, at the
linking container's start: a line `IP ALIAS HOSTNAME NAME` of its /etc/hosts per link (kept up to
date when a target starts again) and the legacy environment variables (spec/links.py).

Links on a user-defined network are not these: they are names resolved by the network's DNS for
the linking container only (EndpointsConfig.<net>.Links, kept with the endpoint in
networks/service.py)."""

from minictr.errors import Conflict, InvalidArgument, MinictrError, NotFound
from minictr.spec.links import check_links, link_environment

SCHEMA = """
CREATE TABLE IF NOT EXISTS links (
    container_id TEXT NOT NULL,
    target_id TEXT NOT NULL,
    alias TEXT NOT NULL,
    PRIMARY KEY (container_id, alias)
)
"""

_LEGACY_LINK_MODES = ("bridge", "default", "none")


def registers_legacy_links(host_config):
    """Whether HostConfig.Links of a container in this network mode are legacy links: Docker takes
    them on the default bridge (and `none`, where they do nothing); on a user-defined network the
    docker CLI sends them as the endpoint's Links too, and the daemon leaves HostConfig's alone."""
    return (host_config.get("NetworkMode") or "default") in _LEGACY_LINK_MODES


class Links:
    def __init__(self, db, containers):
        self.db = db
        self.containers = containers  # the ContainerStore: names and records

    def plan(self, container_id, host_config):
        """At create: the rows of the container's legacy links, each target checked; nothing is
        recorded (`record` does, with the container's other rows)."""
        mode = host_config.get("NetworkMode") or "default"
        links = check_links(host_config.get("Links"))
        if not links:
            return []
        if mode == "host":
            raise InvalidArgument("conflicting options: host type networking can't be used with links. "
                                  "This would result in undefined behavior")
        if mode.startswith("container:"):
            raise InvalidArgument("conflicting options: container type network can't be used with links. "
                                  "This would result in undefined behavior")
        if not registers_legacy_links(host_config):
            return []
        rows, aliases = [], set()
        for name, alias in links:
            target = self._target(name)
            if alias not in aliases:  # a second link with the same alias is ignored, as in Docker
                aliases.add(alias)
                rows.append((container_id, target.id, alias))
        return rows

    def _target(self, name):
        try:
            target = self.containers.get(name)
        except NotFound as e:
            # Docker answers 400 here, not 404: a client would say the image is missing.
            raise InvalidArgument(f"could not get container for {name}: {e}") from None
        seen = set()
        while (target.host_config.get("NetworkMode") or "").startswith("container:") and target.id not in seen:
            seen.add(target.id)  # a target sharing another's network stands for that one
            joined = target.host_config["NetworkMode"].partition(":")[2]
            try:
                target = self.containers.get(joined)
            except NotFound as e:
                raise InvalidArgument(f"Could not get container for {joined}: {e}") from None
        if target.host_config.get("NetworkMode") == "host":
            raise InvalidArgument("conflicting options: host type networking can't be used with links. "
                                  "This would result in undefined behavior")
        return target

    def record(self, rows):
        with self.db.transaction() as cur:
            for row in rows:
                cur.execute("INSERT OR IGNORE INTO links (container_id, target_id, alias) VALUES (?, ?, ?)", row)

    def forget(self, container_id):
        """A removed container: its links, and those to it, go (Docker's link index does the same)."""
        with self.db.transaction() as cur:
            cur.execute("DELETE FROM links WHERE container_id = ? OR target_id = ?", (container_id, container_id))

    def forget_all_but(self, container_ids):
        """At the daemon's start: links of containers that no longer exist go."""
        known = set(container_ids)
        stale = {r["container_id"] for r in self.db.query("SELECT container_id FROM links")} | \
                {r["target_id"] for r in self.db.query("SELECT target_id FROM links")}
        for container_id in stale - known:
            self.forget(container_id)

    def remove(self, link_name):
        """`rm --link /PARENT/ALIAS`: that link goes; returns the linking container. Docker's words:
        a link name is looked up as a container's name first."""
        parent_name, _, alias = link_name.strip("/").rpartition("/")
        if not parent_name:
            self.containers.get(alias)  # NotFound, as for any name
            raise Conflict("Conflict, cannot remove the default link name of the container")
        try:
            parent = self.containers.get(parent_name)
        except NotFound:
            parent = None
        removed = 0
        if parent is not None:
            with self.db.transaction() as cur:
                removed = cur.execute("DELETE FROM links WHERE container_id = ? AND alias = ?",
                                      (parent.id, alias)).rowcount
        if not removed:
            raise NotFound(f"No such container: {link_name.strip('/')}")
        return parent

    # ---- what the linking container gets -------------------------------------------------------

    def of(self, container):
        """[(alias, target record)] of `container`'s links, in their order."""
        found = []
        for row in self.db.query("SELECT * FROM links WHERE container_id = ? ORDER BY rowid", (container.id,)):
            try:
                found.append((row["alias"], self.containers.get(row["target_id"])))
            except MinictrError:
                continue  # removed meanwhile: forget() is on its way
        return found

    def linking_to(self, target_id):
        """The ids of the containers that link to `target_id`."""
        return [r["container_id"] for r in self.db.query("SELECT container_id FROM links WHERE target_id = ?",
                                                         (target_id,))]

    def inspect_entries(self, container):
        """HostConfig.Links as Docker's inspect shows them: ["/TARGET:/CONTAINER/ALIAS"], or None."""
        return [f"/{target.name}:/{container.name}/{alias}" for alias, target in self.of(container)] or None

    def check_startable(self, container):
        """Before the linking container starts: every target runs, or Docker's error."""
        for alias, target in self.of(container):
            if not target.state.alive:
                raise MinictrError(f"Cannot link to a non running container: /{target.name} AS "
                                   f"/{container.name}/{alias}")

    def hosts_lines(self, container, bridge_ip):
        """The /etc/hosts lines of the links (`bridge_ip(id)`: a container's address on the default
        bridge, '' if none): `IP ALIAS HOSTNAME [NAME]`, the name left out when it is the alias."""
        lines = []
        for alias, target in self.of(container):
            ip = bridge_ip(target.id)
            if ip:
                names = [alias, target.config.get("Hostname") or target.id[:12]]
                if alias != target.name:
                    names.append(target.name)
                lines.append(f"{ip}\t{' '.join(names)}\n")
        return lines

    def environment(self, container, bridge_ip):
        """The legacy variables of the container's links, in order, each target running."""
        env = []
        for alias, target in self.of(container):
            ip = bridge_ip(target.id)
            if not ip:
                raise MinictrError(f"Cannot link to /{target.name}, as it does not belong to the default network")
            env += link_environment(f"/{container.name}/{alias}", ip, _declared_env(target),
                                    target.config.get("ExposedPorts"))
        return env


def _declared_env(container):
    """Config.Env without the HOSTNAME entry minictr puts first: Docker's Config.Env has none (it sets
    HOSTNAME at the start), so a link of Docker's has no ALIAS_ENV_HOSTNAME."""
    own_hostname = f"HOSTNAME={container.config.get('Hostname')}"
    return [entry for entry in container.config.get("Env") or [] if entry != own_hostname]
