"""When a container's restart policy brings it back, and after how long (Docker's back-off)."""

from minictr.spec import restart
from minictr.spec.times import rfc3339_to_unix

# Docker's restart back-off: 100 ms, doubled after each restart, at most a minute; a container
# that ran for 10 s starts again from the bottom.
_BACKOFF_FIRST, _BACKOFF_MAX, _BACKOFF_RESET_AFTER = 0.1, 60.0, 10.0


def restart_delay(container, exit_code, finished_ns):
    """Seconds until the restart policy brings the container back, or None if it stays down
    (it keeps its back-off in `container.backoff`)."""
    policy = restart.normalize(container.host_config.get("RestartPolicy"))
    name, limit = policy["Name"], policy["MaximumRetryCount"]
    if container.manually_stopped or container.start_failed or name == "no":
        container.start_failed = False
        return None
    if name == "on-failure" and (exit_code == 0 or (limit and container.restart_count >= limit)):
        return None
    ran_for = finished_ns / 1e9 - rfc3339_to_unix(container.started_at)
    if ran_for >= _BACKOFF_RESET_AFTER or container.backoff == 0:
        container.backoff = _BACKOFF_FIRST
    else:
        container.backoff = min(container.backoff * 2, _BACKOFF_MAX)
    return container.backoff


def restarts_with_daemon(container):
    """Docker brings back `always` containers when it starts, and `unless-stopped` ones that
    nobody stopped."""
    policy = restart.normalize(container.host_config.get("RestartPolicy"))["Name"]
    return policy == "always" or (policy == "unless-stopped" and not container.manually_stopped)
