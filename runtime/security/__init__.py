"""How a container is confined: capabilities, seccomp, no-new-privileges, masked and read-only paths.

`Confinement.check` validates a create request's security fields (bad input fails the create, not the
start); `Confinement.monitor_entries` gives the monitor config keys that apply them, the same for a
container's init and for each exec in it.
"""


class Confinement:
    def __init__(self, data_root, rootless):
        self.data_root = data_root
        self.rootless = rootless

    def check(self, host_config):
        """Raise InvalidArgument (Docker's words) for a HostConfig whose security fields are wrong."""
        from minictr.security import capabilities

        capabilities.container_caps(host_config)

    def monitor_entries(self, host_config, exec_privileged=False):
        """Monitor config entries for a process of a container with HOST_CONFIG (an exec: with its own
        --privileged)."""
        return []
