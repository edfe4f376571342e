"""The watchdog behind `fupin up`: a process that exited is started again.

On Kubernetes the kubelet restarts a container whose process exits; with compose,
`restart: unless-stopped` does. On one machine `fupin up` leaves this watchdog running: every
`interval` seconds it checks each process and starts again any that is gone, backing off
(1 s, 2 s, ... up to 30 s) when one keeps exiting at once, so a broken service does not spin.
`fupin down` stops the watchdog first, then the processes.
"""
import logging
import time
from collections.abc import Callable, Iterable

log = logging.getLogger("fupin.watchdog")

MIN_BACKOFF, MAX_BACKOFF, STABLE_AFTER = 1.0, 30.0, 60.0


class Watchdog:
    def __init__(self, components: Iterable[str], is_alive: Callable[[str], bool], restart: Callable[[str], object],
                 clock: Callable[[], float] = time.monotonic):
        self.components = tuple(components)
        self.is_alive, self.restart, self.clock = is_alive, restart, clock
        self.backoff = {name: MIN_BACKOFF for name in self.components}
        self.started_at = {name: clock() for name in self.components}
        self.not_before = {name: 0.0 for name in self.components}
        self.restarts = {name: 0 for name in self.components}

    def check(self):
        """One round: restart what is gone (when its backoff allows); returns the names restarted."""
        now = self.clock()
        restarted = []
        for name in self.components:
            if self.is_alive(name):
                if now - self.started_at[name] > STABLE_AFTER:
                    self.backoff[name] = MIN_BACKOFF
                continue
            if now < self.not_before[name]:
                continue
            log.warning("%s is not running; starting it again (restart %d)", name, self.restarts[name] + 1)
            try:
                self.restart(name)
            except Exception:  # noqa: BLE001 - try again after the backoff
                log.exception("could not start %s", name)
            self.restarts[name] += 1
            self.started_at[name] = now
            self.not_before[name] = now + self.backoff[name]
            self.backoff[name] = min(MAX_BACKOFF, self.backoff[name] * 2)
            restarted.append(name)
        return restarted

    def run(self, interval=1.0, should_stop: Callable[[], bool] = lambda: False, sleep=time.sleep):
        while not should_stop():
            self.check()
            sleep(interval)
