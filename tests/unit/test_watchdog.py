"""The watchdog `fupin up` leaves running: what exits is started again, with a backoff."""
from fupin.supervisor import MAX_BACKOFF, Watchdog


class FakeProcesses:
    def __init__(self, names):
        self.alive = dict.fromkeys(names, True)
        self.started = []

    def restart(self, name):
        self.started.append(name)
        self.alive[name] = True


def test_an_exited_process_is_started_again_and_the_others_are_left_alone():
    now = [0.0]
    processes = FakeProcesses(["registry", "gateway"])
    dog = Watchdog(["registry", "gateway"], processes.alive.get, processes.restart, clock=lambda: now[0])
    assert dog.check() == []
    processes.alive["registry"] = False  # SIGKILLed, or nameko tore its container down
    assert dog.check() == ["registry"]
    assert processes.started == ["registry"] and processes.alive["registry"]


def test_a_process_that_keeps_exiting_is_restarted_with_a_growing_backoff():
    now = [0.0]
    processes = FakeProcesses(["credit"])
    dog = Watchdog(["credit"], lambda name: False, processes.restart, clock=lambda: now[0])
    times = []
    for step in range(200):
        now[0] = step * 0.5
        if dog.check():
            times.append(now[0])
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert gaps[:4] == [1.0, 2.0, 4.0, 8.0]
    assert max(gaps) <= MAX_BACKOFF
