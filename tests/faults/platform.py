"""The platform as separate processes, the way `fupin up` runs it, with the faults the suite
inflicts: SIGKILL of a process, a RabbitMQ outage, duplicate deliveries.

The broker outage is a TCP proxy between the processes and RabbitMQ, not `rabbitmqctl
stop_app`: RabbitMQ on this machine is shared by every suite running here, and stopping it
would break their runs. Closing the proxy cuts every connection the platform holds and refuses
new ones (ECONNREFUSED) until it listens again, which is exactly what the processes see when the
broker restarts; nobody else notices.
"""
import os
import signal
import socket
import sys
import time
from pathlib import Path

import eventlet
import requests

from fupin.supervisor import Watchdog
from services.common.config import REPO_ROOT, config_path
from tests import support


class Process:
    """A process started with posix_spawn: no pipe for the parent to read (eventlet's green Popen,
    run from the watchdog's green thread, trips over its own pipe read when a closed socket's file
    descriptor number comes back as that pipe)."""

    def __init__(self, argv, env, log_path):
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
        self.pid = os.posix_spawn(argv[0], argv, env, setsid=True, file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, str(log_path), flags, 0o644),
            (os.POSIX_SPAWN_DUP2, 1, 2),
        ])
        self.returncode = None

    def poll(self):
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                pid, status = self.pid, 0
            if pid == self.pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout):
        deadline = time.monotonic() + timeout
        while self.poll() is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"pid {self.pid} still running")
            eventlet.sleep(0.1)
        return self.returncode

COMPONENTS = {
    "registry": "services.registry.service:RegistryService",
    "assistance": "services.assistance.service:AssistanceService",
    "projects": "services.projects.service:ProjectsService",
    "credit": "services.credit.service:CreditService",
    "assessment": "services.assessment.service:AssessmentService",
    "supervision": "services.supervision.service:SupervisionService",
    "gateway": "gateway.service:GatewayService",
}
ADMIN_PASSWORD = "fupin-admin"  # the development default (ENVIRONMENT development)


class BrokerProxy:
    """127.0.0.1:<port> -> RabbitMQ; `outage(seconds)` is a broker restart as clients see it."""

    def __init__(self, target=("127.0.0.1", 5672)):
        self.target, self.port = target, support.free_port()
        self.pairs, self.server, self.acceptor = set(), None, None

    def start(self):
        self.server = eventlet.listen(("127.0.0.1", self.port))
        self.acceptor = eventlet.spawn(self._accept)

    def _accept(self):
        while True:
            try:
                client, _ = self.server.accept()
            except (OSError, EOFError):
                return
            try:
                upstream = eventlet.connect(self.target)
            except OSError:
                client.close()
                continue
            pair = (client, upstream)
            self.pairs.add(pair)
            eventlet.spawn(self._pipe, client, upstream, pair)
            eventlet.spawn(self._pipe, upstream, client, pair)

    def _pipe(self, source, sink, pair):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except (OSError, EOFError):
            pass
        finally:
            self._cut(pair)
            # Each socket is closed only by the green thread that reads it: closing it under the
            # other direction's waiting reader left a stale listener on its fd number, which a
            # later connection reused ("Second simultaneous read on fileno" in later tests).
            source.close()

    def _cut(self, pair):
        """Both directions see the end (recv returns b''); their pipes close their own sockets."""
        self.pairs.discard(pair)
        for sock in pair:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def stop(self):
        if self.acceptor is not None:
            self.acceptor.kill()
        if self.server is not None:
            self.server.close()
        for pair in list(self.pairs):
            self._cut(pair)

    def outage(self, seconds):
        self.stop()
        eventlet.sleep(seconds)
        self.start()


class Platform:
    """Every component as a `nameko run` process on the test databases, behind the proxy,
    supervised by fupin's watchdog (which `fupin up` leaves running)."""

    def __init__(self, vhost_uri, logs: Path):
        self.vhost = vhost_uri.rsplit("/", 1)[1]
        self.direct_uri = vhost_uri
        self.proxy = BrokerProxy()
        self.amqp_uri = f"amqp://guest:guest@127.0.0.1:{self.proxy.port}/{self.vhost}"
        self.ports = {name: support.free_port() for name in COMPONENTS}
        self.databases = {name: support.database_url(f"faults_{name}") for name in COMPONENTS}
        self.processes: dict[str, Process] = {}
        self.logs = logs
        self.watchdog = Watchdog(COMPONENTS, self.alive, self.start_process)
        self.stopping = False
        self.watcher = None

    @property
    def gateway(self):
        return f"http://127.0.0.1:{self.ports['gateway']}"

    def env(self, name):
        env = dict(os.environ)
        env.update(
            DATABASE_URL=self.databases[name], AMQP_URI=self.amqp_uri,
            WEB_SERVER_ADDRESS=f"127.0.0.1:{self.ports[name]}", PYTHONPATH=str(REPO_ROOT),
            FUPIN_ADMIN_PASSWORD=ADMIN_PASSWORD, FUPIN_AUDITOR_PASSWORD="fupin-auditor",
            FUPIN_JWT_SECRET="faults-signing-key", FUPIN_ENV="development",
            FUPIN_RPC_TIMEOUT_SECONDS="10",  # a client retries sooner than after a minute
            FUPIN_LOGIN_ADDRESS_MAX_FAILURES="100000",
        )
        return env

    def start_process(self, name):
        nameko = Path(sys.executable).with_name("nameko")
        self.processes[name] = Process([str(nameko), "run", "--config", str(config_path(name)), COMPONENTS[name]],
                                       self.env(name), self.logs / f"{name}.log")

    def alive(self, name):
        process = self.processes.get(name)
        return process is not None and process.poll() is None

    def start(self):
        from services.common.db import drop_database
        from services.common.migrate import migrate

        for name, url in self.databases.items():
            drop_database(url)
            migrate(name, url)
        self.proxy.start()
        for name in COMPONENTS:
            self.start_process(name)
        self.watcher = eventlet.spawn(self.watchdog.run, 0.5, lambda: self.stopping, eventlet.sleep)
        self.wait_serving(180)

    def kill(self, name):
        os.killpg(self.processes[name].pid, signal.SIGKILL)

    def stop(self):
        self.stopping = True
        if self.watcher is not None:
            self.watcher.kill()
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for process in self.processes.values():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except TimeoutError:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        self.proxy.stop()

    # --- is everything serving? -----------------------------------------------------------------
    def consumers(self):
        """{service: consumers of its RPC queue}, asked of RabbitMQ directly (not through the proxy)."""
        from services.common.rpc import _count_consumers

        return {name: _count_consumers(self.direct_uri, name) for name in COMPONENTS if name != "gateway"}

    def serving(self):
        try:
            if requests.get(f"{self.gateway}/readyz", timeout=3).status_code != 200:
                return False
        except requests.RequestException:
            return False
        return all(self.consumers().values())

    def wait_serving(self, timeout):
        started = time.monotonic()
        while not self.serving():
            if time.monotonic() - started > timeout:
                raise AssertionError(f"the platform was not serving within {timeout}s: consumers {self.consumers()}; "
                                     f"alive {[n for n in COMPONENTS if self.alive(n)]}; logs in {self.logs}")
            eventlet.sleep(0.5)
        return time.monotonic() - started
