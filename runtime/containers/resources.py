"""A container's resource limits: cgroup limits (memory, cpu, pids, cpuset) on v1 and v2, rlimits and
/dev/shm's size, from HostConfig as Docker reads them."""


class Resources:
    def __init__(self, cgroups, rootless):
        self.cgroups = cgroups
        self.rootless = rootless

    def check(self, host_config):
        """Raise InvalidArgument (Docker's words) for limits that are wrong or that this machine cannot
        enforce (unless the user chose to go on without them)."""

    def monitor_entries(self, host_config):
        """Monitor config entries: rlimits and the size of /dev/shm."""
        return []
