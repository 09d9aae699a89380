"""Docker's restart policy: `--restart no|always|unless-stopped|on-failure[:N]` as users type it,
HostConfig.RestartPolicy as the daemon checks it, and as inspect shows it.

The CLI sends "no" as an empty Name (as the docker CLI does); the daemon keeps what it was sent,
and inspect shows an empty Name as "no" again (`normalize`)."""

from minictr.errors import InvalidArgument

NAMES = ("no", "always", "unless-stopped", "on-failure")


def parse(text):
    """Docker's --restart: no | always | unless-stopped | on-failure[:max-retries]."""
    name, sep, count = (text or "no").partition(":")
    if name not in NAMES:
        raise InvalidArgument(f"invalid restart policy '{name}'")
    if sep and name != "on-failure":
        raise InvalidArgument(f"maximum retry count cannot be used with restart policy '{name}'")
    if sep and not count.isdigit():
        raise InvalidArgument(f"invalid restart policy format: maximum retry count must be an integer: {count!r}")
    return {"Name": "" if name == "no" else name, "MaximumRetryCount": int(count) if sep else 0}


def check(policy, auto_remove=False):
    """A create (or update) body's RestartPolicy, as Docker's daemon checks it."""
    policy = policy or {}
    name = policy.get("Name") or ""
    if name not in ("", *NAMES):
        raise InvalidArgument(f"invalid restart policy '{name}'")
    if policy.get("MaximumRetryCount") and name != "on-failure":
        raise InvalidArgument("invalid restart policy: maximum retry count can only be used with 'on-failure'")
    if (policy.get("MaximumRetryCount") or 0) < 0:
        raise InvalidArgument("invalid restart policy: maximum retry count cannot be negative")
    if auto_remove and name not in ("", "no"):
        raise InvalidArgument("can't create 'AutoRemove' container with restart policy")


def updated(host_config, policy):
    """The RestartPolicy an update body's POLICY gives the container of HOST_CONFIG, checked; None
    when the body asks for none."""
    if not (policy or {}).get("Name"):
        return None
    if host_config.get("AutoRemove") and policy["Name"] != "no":
        raise InvalidArgument("Restart policy cannot be updated because AutoRemove is enabled for the container")
    policy = {"Name": policy["Name"], "MaximumRetryCount": policy.get("MaximumRetryCount") or 0}
    check(policy, host_config.get("AutoRemove"))
    return policy


def normalize(policy):
    """The policy as inspect shows it: Docker's defaults for what was left empty."""
    policy = policy or {}
    return {"Name": policy.get("Name") or "no", "MaximumRetryCount": policy.get("MaximumRetryCount") or 0}
