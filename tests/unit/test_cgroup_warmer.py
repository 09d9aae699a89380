"""The cgroup move warmer exists only where moves wait on an RCU grace period it can take off a start:
v1 groups made by a root daemon. Elsewhere (rootless, v2, no groups) there is no thread at all."""

import types

from minictr.containers.cgroups import MigrationWarmer


def _cgroups(rootless=False, unified=False, parents=("/sys/fs/cgroup/freezer/minictr",)):
    return types.SimpleNamespace(rootless=rootless, unified=unified, parents=list(parents))


def test_no_warmer_for_a_rootless_daemon():
    assert MigrationWarmer.for_cgroups(_cgroups(rootless=True)) is None


def test_no_warmer_on_cgroup_v2():
    assert MigrationWarmer.for_cgroups(_cgroups(unified=True, parents=["/sys/fs/cgroup/minictr"])) is None


def test_no_warmer_without_groups():
    assert MigrationWarmer.for_cgroups(_cgroups(parents=[])) is None
