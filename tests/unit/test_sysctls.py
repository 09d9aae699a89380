"""spec/sysctls.py: the keys of a container's own namespaces pass, the rest is refused in runc's words."""

import pytest

from minictr.errors import InvalidArgument
from minictr.spec import sysctls


@pytest.mark.parametrize("key", ["net.ipv4.ip_forward", "net.core.somaxconn", "kernel.shmmax", "kernel.msgmnb",
                                 "kernel.sem", "kernel.shm_rmid_forced", "fs.mqueue.msg_max", "kernel.domainname"])
def test_namespaced_keys_pass(key):
    sysctls.check({key: "1"})


@pytest.mark.parametrize("key,modes,message", [
    ("kernel.core_pattern", {}, 'sysctl "kernel.core_pattern" is not in a separate kernel namespace'),
    ("vm.swappiness", {}, 'sysctl "vm.swappiness" is not in a separate kernel namespace'),
    ("kernel.shmmax", {"ipc_mode": "host"}, 'sysctl "kernel.shmmax" not allowed in host ipc namespace'),
    ("fs.mqueue.msg_max", {"ipc_mode": "host"}, 'sysctl "fs.mqueue.msg_max" not allowed in host ipc namespace'),
    ("net.ipv4.ip_forward", {"network_mode": "host"},
     'sysctl "net.ipv4.ip_forward" not allowed in host network namespace'),
    ("kernel.domainname", {"uts_mode": "host"}, 'sysctl "kernel.domainname" not allowed in host UTS namespace'),
    ("kernel.hostname", {}, 'sysctl "kernel.hostname" is not allowed as it conflicts with the OCI "hostname" field'),
    ("net.ipv4/../../x", {}, 'sysctl "net.ipv4/../../x" is not a kernel parameter'),
])
def test_keys_outside_the_containers_namespaces_are_refused(key, modes, message):
    with pytest.raises(InvalidArgument) as refused:
        sysctls.check({key: "1"}, **modes)
    assert str(refused.value) == message


def test_a_value_must_be_a_string():
    with pytest.raises(InvalidArgument, match="must be a string"):
        sysctls.check({"net.ipv4.ip_forward": 1})
