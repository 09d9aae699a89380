"""spec/hosts.py: /etc/hosts lines and the `--add-host` / HostConfig.ExtraHosts entries."""

import pytest

from minictr.errors import InvalidArgument
from minictr.spec.hosts import check_extra_hosts, extra_host_line, hosts_file, split_extra_host


def test_entries_split_at_the_first_colon():
    assert split_extra_host("db:10.0.0.2") == ("db", "10.0.0.2")
    assert split_extra_host("v6:::1") == ("v6", "::1")
    assert extra_host_line("v6:::1") == "::1\tv6\n"


@pytest.mark.parametrize("entry", ["foo", "foo:", ":1.2.3.4", 7])
def test_an_entry_without_both_parts_is_none(entry):
    assert split_extra_host(entry) is None


def test_the_daemon_refuses_a_bad_entry_naming_the_field():
    check_extra_hosts(None)
    check_extra_hosts(["db:10.0.0.2"])
    with pytest.raises(InvalidArgument, match="invalid HostConfig.ExtraHosts entry 'foo'"):
        check_extra_hosts(["db:10.0.0.2", "foo"])
    with pytest.raises(InvalidArgument, match="expected a list"):
        check_extra_hosts("db:10.0.0.2")


def test_every_container_has_localhost_and_its_own_name():
    assert hosts_file("web").splitlines()[0] == "127.0.0.1\tlocalhost"
    assert hosts_file("web").endswith("127.0.1.1\tweb\n")
