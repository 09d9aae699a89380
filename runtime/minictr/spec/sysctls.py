"""`--sysctl`: which kernel parameters a container may set, as runc decides it (libcontainer's
validateSysctl): only those of a namespace the container has of its own, so that no write reaches
the host's kernel. Refused in runc's words."""

from minictr.errors import InvalidArgument

# The IPC namespace's parameters (runc's, and the docker CLI's list).
IPC_KEYS = ("kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall", "kernel.shmmax",
            "kernel.shmmni", "kernel.shm_rmid_forced")
IPC_PREFIX = "fs.mqueue."
NET_PREFIX = "net."


def is_ipc_key(key):
    return key in IPC_KEYS or key.startswith(IPC_PREFIX)


def check(sysctls, network_mode="", ipc_mode="", uts_mode=""):
    """Raise InvalidArgument for the first of SYSCTLS ({key: value}) that this container's namespaces
    (as its HostConfig modes say) do not keep from the host."""
    for key, value in (sysctls or {}).items():
        if not isinstance(value, str):
            raise InvalidArgument(f"sysctl {key!r}: the value must be a string")
        if is_ipc_key(key):
            if ipc_mode == "host":
                raise InvalidArgument(f'sysctl "{key}" not allowed in host ipc namespace')
        elif key.startswith(NET_PREFIX):
            if network_mode == "host":
                raise InvalidArgument(f'sysctl "{key}" not allowed in host network namespace')
        elif key == "kernel.domainname":
            if uts_mode == "host":
                raise InvalidArgument(f'sysctl "{key}" not allowed in host UTS namespace')
        elif key == "kernel.hostname":
            raise InvalidArgument(f'sysctl "{key}" is not allowed as it conflicts with the OCI "hostname" field')
        else:
            raise InvalidArgument(f'sysctl "{key}" is not in a separate kernel namespace')
        if "/" in key or ".." in key or key.endswith("."):
            raise InvalidArgument(f'sysctl "{key}" is not a kernel parameter')
