"""containers/health.py's HealthChecks driven by container events, with an exec service that runs
nothing (no kernel): probes on timers, State.Health written at each status change, health_status
events, the timeout, stop and restart."""

import asyncio
from types import SimpleNamespace

from minictr.containers.health import HealthChecks
from minictr.containers.state import State
from minictr.errors import NotFound
from minictr.events import Events


class FakeStore:
    def __init__(self, events, *containers):
        self.events = events
        self.containers = {c.id: c for c in containers}
        self.writes = []

    def all(self):
        return list(self.containers.values())

    def get(self, ref):
        if ref not in self.containers:
            raise NotFound(ref)
        return self.containers[ref]

    def write(self, container, **columns):
        self.writes.append(columns)
        for name, value in columns.items():
            setattr(container, name, value)

    def emit(self, container, action, **attributes):
        self.events.emit("container", action, container.id, attributes)


class FakeExecs:
    """Each probe 'runs' the exit code and output the test chose, or hangs until killed."""

    def __init__(self):
        self.results = []  # (exit code, output) or "hang"
        self.argvs = []
        self.killed = 0

    def create_probe(self, container, argv):
        self.argvs.append(argv)
        return SimpleNamespace(finished=asyncio.Event(), exit_code=None)

    async def start_captured(self, instance, capture):
        result = self.results.pop(0) if self.results else (0, "")
        if result == "hang":
            instance.kill = lambda: (setattr(instance, "exit_code", 137), instance.finished.set())
            self._hanging = instance
            capture.done.set()
            return
        instance.exit_code, output = result
        capture._keep(output.encode())
        capture.done.set()
        instance.finished.set()

    def kill(self, instance):
        self.killed += 1
        instance.kill()


def container(health_config):
    return SimpleNamespace(id="c" * 64, name="web", state=State.RUNNING, health=None, removed=False,
                           started_at="2026-12-08T00:00:00.000000000Z",
                           config={"Healthcheck": health_config, "Labels": {}})


async def until(predicate, timeout=10.0):
    """Polls the loop: a busy machine delays the probes' timers, never reorders them."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.005)


def actions(events):
    return [e["Action"] for e in events._past]


def test_probes_follow_the_containers_events():
    async def scenario():
        events = Events()
        web = container({"Test": ["CMD-SHELL", "check"], "Interval": 20_000_000, "Retries": 2})
        store, execs = FakeStore(events, web), FakeExecs()
        checks = HealthChecks(store, execs, events)
        checks.resume()  # a running container at the daemon's start: probed from "starting"
        assert web.health == {"Status": "starting", "FailingStreak": 0, "Log": []}
        await until(lambda: web.health["Status"] == "healthy")
        assert execs.argvs[0] == ["/bin/sh", "-c", "check"]
        assert actions(events).count("health_status: healthy") == 1

        execs.results = [(1, "bad\n")] * 10
        await until(lambda: len(execs.results) <= 4)
        assert web.health["Status"] == "unhealthy" and web.health["FailingStreak"] >= 2
        assert web.health["Log"][-1]["Output"] == "bad\n" and len(web.health["Log"]) == 5
        assert "health_status: unhealthy" in actions(events)
        written = [w["health"]["Status"] for w in store.writes]
        assert written == ["starting", "healthy", "unhealthy"]  # the row at each change only

        web.state = State.EXITED
        events.emit("container", "die", web.id)
        await until(lambda: len(store.writes) == 4)  # the probes stopped: unhealthy written once more
        probes = len(execs.argvs)
        await asyncio.sleep(0.1)
        assert len(execs.argvs) == probes, "probes went on after the container died"
        assert web.health["Status"] == "unhealthy"

        execs.results = []
        web.state = State.RUNNING
        events.emit("container", "start", web.id)
        await until(lambda: web.health["Status"] != "unhealthy")
        assert web.health["Status"] == "starting" and web.health["FailingStreak"] == 0
        assert len(web.health["Log"]) == 5  # kept over a restart
        await until(lambda: web.health["Status"] == "healthy")
        checks.close()

    asyncio.run(scenario())


def test_a_probe_past_its_timeout_is_killed_and_recorded_as_dockers():
    async def scenario():
        events = Events()
        web = container({"Test": ["CMD", "slow"], "Interval": 10_000_000, "Timeout": 30_000_000, "Retries": 1})
        store, execs = FakeStore(events, web), FakeExecs()
        execs.results = ["hang"] * 20
        checks = HealthChecks(store, execs, events)
        checks.resume()
        await until(lambda: execs.killed >= 1 and web.health["Log"])
        entry = web.health["Log"][0]
        assert (entry["ExitCode"], entry["Output"]) == (-1, "Health check exceeded timeout (30ms)")
        assert web.health["Status"] == "unhealthy"
        checks.close()

    asyncio.run(scenario())


def test_no_healthcheck_no_probes_and_no_health():
    async def scenario():
        events = Events()
        store, execs = FakeStore(events, container({"Test": ["NONE"]})), FakeExecs()
        checks = HealthChecks(store, execs, events)
        checks.resume()
        await asyncio.sleep(0.05)
        assert execs.argvs == [] and store.all()[0].health is None
        checks.close()

    asyncio.run(scenario())
