"""Healthchecks: the daemon probes each running container that has one (its Config.Healthcheck,
the image's merged in at create) and keeps State.Health, as moby's daemon/health.go does.

A probe is an exec (the exec service's machinery: one short-lived monitor per probe, its
exec_create/exec_start/exec_die events), its combined output captured up to 4096 bytes. The
probes are timers on the event loop, no thread per container. The service follows containers
through their events: `start` (re)starts the probes with Status "starting", `die` and `pause`
stop them and leave Status "unhealthy" (Docker's CloseMonitorChannel), `unpause` resumes them.

State.Health is kept on the container's record and row (column `health`): written when its
Status changes and when the daemon stops, so a restarted daemon shows it; the probes of running
containers resume then with Status "starting" and the failing streak reset, as Docker's live
restore does (moby 0e62dbad: the container went unwatched for a while).
"""

import asyncio
import logging
import time
from dataclasses import dataclass

from minictr.containers.exec import OutputCapture
from minictr.containers.state import State
from minictr.errors import MinictrError
from minictr.spec import health as spec
from minictr.spec.times import rfc3339, rfc3339_to_unix
from minictr.tasks import spawn

log = logging.getLogger("minictr.health")

MAX_OUTPUT = 4096  # bytes of a probe's output kept in its Log entry
MAX_LOG_ENTRIES = 5
STARTING, HEALTHY, UNHEALTHY = "starting", "healthy", "unhealthy"
_KILL_WAIT = 10.0  # seconds a killed probe may take to be gone before its result is recorded anyway


@dataclass
class ProbeResult:
    start_ns: int
    end_ns: int
    exit_code: int
    output: str

    def entry(self):
        return {"Start": rfc3339(self.start_ns, trimmed=True), "End": rfc3339(self.end_ns, trimmed=True),
                "ExitCode": self.exit_code, "Output": self.output}


def starting(health):
    """State.Health at a (re)start: Status starting, no failing streak, the Log kept."""
    return {"Status": STARTING, "FailingStreak": 0, "Log": list((health or {}).get("Log") or [])}


def record(health, result, config, started_ns):
    """State.Health after a probe's RESULT (handleProbeResult): the Log's last five entries; a
    success makes it healthy; a failure counts unless it is still starting within its start
    period, and `retries` failures in a row make it unhealthy. Returns the new State.Health."""
    _, _, start_period, _, retries = spec.settings(config)
    status, streak = health["Status"], health["FailingStreak"]
    if result.exit_code == 0:
        status, streak = HEALTHY, 0
    elif not (status == STARTING and result.start_ns - started_ns < start_period):
        streak += 1
        if streak >= retries:
            status = UNHEALTHY
    return {"Status": status, "FailingStreak": streak,
            "Log": (list(health["Log"]) + [result.entry()])[-MAX_LOG_ENTRIES:]}


def next_interval(config, status, started_ns, now_ns):
    """Nanoseconds to the next probe: the start interval while starting within the start period,
    the interval otherwise (counted from the end of the last probe, as Docker)."""
    interval, _, start_period, start_interval, _ = spec.settings(config)
    if now_ns - started_ns < start_period and status == STARTING:
        return start_interval
    return interval


@dataclass(eq=False)
class _Prober:
    """The probes of one running container."""

    container: object  # minictr.containers.store.Container
    argv: list
    started_ns: int  # when the container started: the start period counts from it
    timer: asyncio.TimerHandle = None
    stopped: bool = False


class HealthChecks:
    """`store`: the ContainerStore (records, rows, events of containers); `execs`: the ExecService
    that runs the probes; `events`: the daemon's event log, whose container events drive this."""

    def __init__(self, store, execs, events):
        self.store = store
        self.execs = execs
        self.events = events
        self._probers = {}  # container id -> _Prober
        self._unsaved = set()  # ids of containers whose Health changed since their row was written
        self._listener = None

    # ---- following the containers --------------------------------------------------------------

    def resume(self):
        """At the daemon's start, once the containers are loaded: probe the running ones again
        (Status starting, as Docker's live restore), and follow every container from now on.
        One that ended while no daemon watched it has had its probes stopped: unhealthy."""
        for container in self.store.all():
            if container.state is State.RUNNING:
                self._begin(container, _started_ns(container))
            elif container.health and container.health["Status"] != UNHEALTHY:
                self._set(container, {**container.health, "Status": UNHEALTHY})
        self._listener = spawn(self._follow())

    def close(self):
        """At the daemon's stop: no more probes; every unsaved State.Health written."""
        if self._listener is not None:
            self._listener.cancel()
        for prober in list(self._probers.values()):
            self._stop(prober)
        self._save_all()

    async def _follow(self):
        while True:
            _, queue = self.events.subscribe()
            try:
                while self.events.subscribed(queue):
                    event = await queue.get()
                    if event["Type"] == "container":
                        self._on_event(event["Action"], event["Actor"]["ID"])
            finally:
                self.events.unsubscribe(queue)

    def _on_event(self, action, container_id):
        if action == "start":
            container = self._record(container_id)
            if container is not None and container.state is State.RUNNING:
                self._begin(container, time.time_ns())
        elif action in ("die", "pause"):
            self._end(container_id)
        elif action == "unpause":
            container = self._record(container_id)
            if container is not None and container.health is not None:
                self._watch(container, _started_ns(container))
        elif action == "destroy":
            self._cancel(container_id)  # its row is gone: nothing to write
            self._unsaved.discard(container_id)

    def _record(self, container_id):
        try:
            return self.store.get(container_id)
        except MinictrError:
            return None

    # ---- probing -----------------------------------------------------------------------------

    def _begin(self, container, started_ns):
        """A (re)start: Status starting, the probes begun (initHealthMonitor)."""
        self._cancel(container.id)
        if spec.probe_command(container.config.get("Healthcheck")) is None:
            return
        self._set(container, starting(container.health))
        self._watch(container, started_ns)

    def _watch(self, container, started_ns):
        """Probe the container from now on, its Status as it is (updateHealthMonitor)."""
        argv = spec.probe_command(container.config.get("Healthcheck"), container.config.get("Shell"))
        if argv is None or container.id in self._probers:
            return
        prober = _Prober(container, argv, started_ns)
        self._probers[container.id] = prober
        self._schedule(prober)

    def _end(self, container_id):
        """The container stopped or paused: no more probes, Status unhealthy (CloseMonitorChannel)."""
        prober = self._probers.get(container_id)
        if prober is None:
            return
        self._stop(prober)
        container = prober.container
        if container.health is not None:
            self._set(container, {**container.health, "Status": UNHEALTHY})

    def _cancel(self, container_id):
        prober = self._probers.get(container_id)
        if prober is not None:
            self._stop(prober)

    def _stop(self, prober):
        prober.stopped = True
        if prober.timer is not None:
            prober.timer.cancel()
        self._probers.pop(prober.container.id, None)

    def _schedule(self, prober):
        config = prober.container.config.get("Healthcheck")
        delay = next_interval(config, prober.container.health["Status"], prober.started_ns, time.time_ns())
        prober.timer = asyncio.get_running_loop().call_later(delay / 1e9, self._due, prober)

    def _due(self, prober):
        prober.timer = None
        if not prober.stopped:
            spawn(self._probe(prober))

    async def _probe(self, prober):
        container = prober.container
        config = container.config.get("Healthcheck")
        try:
            result = await run_probe(self.execs, container, prober.argv, spec.settings(config)[1])
        except Exception:
            log.exception("probing %s", container.name)  # a bug: the probes go on all the same
            result = ProbeResult(time.time_ns(), time.time_ns(), -1, "the daemon could not run the probe")
        if prober.stopped:
            return  # stopped meanwhile: Docker drops the result
        old = container.health["Status"]
        health = record(container.health, result, config, prober.started_ns)
        if health["Status"] != old:
            self._set(container, health)
            self.store.emit(container, f"health_status: {health['Status']}")
        else:
            container.health = health
            self._unsaved.add(container.id)
        self._schedule(prober)

    # ---- State.Health on the record and its row ------------------------------------------------

    def _set(self, container, health):
        """A new Status: written to the row now, with the Log as it is."""
        self._unsaved.discard(container.id)
        try:
            self.store.write(container, health=health)
        except Exception as e:  # the record has it; the row gets it with the next change
            container.health = health
            self._unsaved.add(container.id)
            log.warning("recording the health of %s: %s", container.name, e)

    def _save_all(self):
        for container_id in list(self._unsaved):
            container = self._record(container_id)
            if container is not None and not container.removed:
                self._set(container, container.health)
        self._unsaved.clear()


async def run_probe(execs, container, argv, timeout_ns):
    """One probe of CONTAINER through the exec service: its exit code and output, -1 and Docker's
    words when it ran past its timeout (it is killed) or could not be run at all."""
    start = time.time_ns()
    capture = OutputCapture(MAX_OUTPUT)
    try:
        instance = execs.create_probe(container, argv)
        await execs.start_captured(instance, capture)
    except (MinictrError, OSError) as e:  # as Docker: a probe that cannot run is a failed one
        return ProbeResult(start, time.time_ns(), -1, str(e))
    try:
        await asyncio.wait_for(instance.finished.wait(), timeout_ns / 1e9)
    except TimeoutError:
        execs.kill(instance)
        # Waited for, as Docker does, so that probes that will not die do not pile up.
        try:
            await asyncio.wait_for(instance.finished.wait(), _KILL_WAIT)
        except TimeoutError:
            log.warning("the timed-out health probe of %s is still running", container.name)
        output = capture.text()
        message = f"Health check exceeded timeout ({spec.format_duration(timeout_ns)})"
        return ProbeResult(start, time.time_ns(), -1, f"{message}: {output}" if output else message)
    try:
        await asyncio.wait_for(capture.done.wait(), _KILL_WAIT)  # the monitor has gone: its socket ends
    except TimeoutError:
        pass
    exit_code = instance.exit_code if instance.exit_code is not None else -1
    return ProbeResult(start, time.time_ns(), exit_code, capture.text())


def _started_ns(container):
    try:
        return rfc3339_to_unix(container.started_at) * 1_000_000_000
    except ValueError:
        return time.time_ns()
