"""How a container is confined: capabilities, seccomp, no-new-privileges, masked and read-only paths,
host devices (security/devices.py; their rules go to the container's cgroups, their nodes to its init).

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
        from minictr.security import capabilities, devices, paths

        capabilities.container_caps(host_config)
        paths.check(host_config)
        devices.check(host_config, self.rootless)
        self._seccomp_check(host_config)

    def monitor_entries(self, host_config, exec_privileged=False):
        """Monitor config entries for a process of a container with HOST_CONFIG (an exec: with its own
        --privileged)."""
        from minictr.security import capabilities, paths

        return (capabilities.monitor_entries(host_config, exec_privileged) + paths.monitor_entries(host_config)
                + self._seccomp_entries(host_config))

    # seccomp and no-new-privileges (security/seccomp.py). An exec runs under its container's filter,
    # as with Docker (runc exec reuses the container's seccomp config), whatever its own --privileged.
    def _seccomp_filters(self):
        from minictr.security import seccomp

        if getattr(self, "_filters", None) is None:
            self._filters = seccomp.FilterCache(self.data_root)
        return self._filters

    def _seccomp_check(self, host_config):
        from minictr.security import capabilities, seccomp

        seccomp.check(host_config, capabilities.container_caps(host_config), self._seccomp_filters())

    def _seccomp_entries(self, host_config):
        from minictr.security import capabilities, seccomp

        return seccomp.monitor_entries(host_config, capabilities.container_caps(host_config),
                                       self._seccomp_filters())
