"""`fupin up` refuses to start over ports that a process it did not start holds (another checkout's
platform): it would say "all ready" while the other platform answered."""
import socket

import click
import pytest

from fupin import cli


def test_up_refuses_ports_held_by_a_platform_it_did_not_start(monkeypatch, tmp_path):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    try:
        monkeypatch.setattr(cli, "PORTS", {component: port for component in cli.COMPONENTS})
        monkeypatch.setattr(cli, "VAR", tmp_path)  # no pid files: this checkout started nothing
        monkeypatch.setattr(cli, "check_backing_services", lambda: [])
        with pytest.raises(click.ClickException, match=f"gateway \\(port {port}\\).*another directory"):
            cli.bring_up(timeout=1)
    finally:
        listener.close()
