"""testcontainers-python's waits, as a test suite built on it uses them, against the Docker socket in
DOCKER_HOST (or /var/run/docker.sock): run by test_testcontainers.py with the venv's python on the
host, and inside a container that has the daemon's socket. Prints what it saw as one JSON line.

    python testcontainers_waits.py IMAGE
"""

import json
import sys
import urllib.request

from testcontainers.core.container import DockerContainer
from testcontainers.core.wait_strategies import HealthcheckWaitStrategy, HttpWaitStrategy
from testcontainers.core.waiting_utils import wait_for_logs

SECOND = 1_000_000_000  # the Engine API's healthcheck durations are nanoseconds


def log_wait(image):
    command = ["sh", "-c", "echo starting; sleep 1; echo ready to serve; exec sleep 1000"]
    with DockerContainer(image).with_command(command) as container:
        wait_for_logs(container, "ready to serve", timeout=30)
        return container.get_logs()[0].decode()


def http_wait(image):
    command = ["sh", "-c", "mkdir /www && echo served > /www/index.html && sleep 1 && exec httpd -f -p 8080 -h /www"]
    wait = HttpWaitStrategy(8080).for_status_code(200).with_startup_timeout(30)
    with DockerContainer(image).with_command(command).with_exposed_ports(8080).waiting_for(wait) as container:
        host, port = container.get_container_host_ip(), container.get_exposed_port(8080)
        with urllib.request.urlopen(f"http://{host}:{port}/", timeout=10) as response:
            body = response.read().decode()
        mode = container.get_docker_client().get_connection_mode().value
        return {"host": host, "port": port, "body": body, "mode": mode}


def health_wait(image):
    command = ["sh", "-c", "sleep 2; touch /tmp/ready; exec sleep 1000"]
    healthcheck = {"test": ["CMD", "test", "-e", "/tmp/ready"], "interval": SECOND // 2, "timeout": 2 * SECOND,
                   "retries": 60}
    container = DockerContainer(image).with_command(command).with_kwargs(healthcheck=healthcheck)
    with container.waiting_for(HealthcheckWaitStrategy().with_startup_timeout(30)):
        container.get_wrapped_container().reload()
        return container.get_wrapped_container().attrs["State"]["Health"]["Status"]


def main():
    image = sys.argv[1]
    print(json.dumps({"logs": log_wait(image), "http": http_wait(image), "health": health_wait(image)}))


if __name__ == "__main__":
    main()
