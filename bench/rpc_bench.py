"""What one nameko RPC costs, and what publisher confirms and persistent messages add (issue 17).

Every gateway request is at least one RPC (gateway -> service -> reply). nameko publishes both
the request and the reply as persistent messages with a publisher confirm. This bench runs a
trivial service (`echo`) in a process of its own, calls it sequentially from this process, and
reports per call: wall time, the caller's CPU, the service's CPU and RabbitMQ's CPU, side by
side for nameko's defaults and for transient messages without confirms (request, reply or both).

    .venv/bin/python bench/rpc_bench.py --calls 3000 --out bench/results/rpc.json
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import eventlet

eventlet.monkey_patch()

from nameko.rpc import ServiceProxy  # noqa: E402
from nameko.standalone.rpc import ClusterRpcProxy  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from services.common.rpc import TransientServiceProxy  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SERVICE = """
import sys, eventlet, eventlet.hubs
eventlet.monkey_patch()
from nameko.containers import ServiceContainer
from nameko.rpc import rpc as nameko_rpc
from services.common.rpc import rpc as fupin_rpc

transient = sys.argv[2] == "transient"
decorator = fupin_rpc if transient else nameko_rpc

class Echo:
    name = "rpcbench"

    @decorator
    def echo(self, data, context=None):
        return {"ok": True, "data": data}

config = {"AMQP_URI": sys.argv[1]}
container = ServiceContainer(Echo, config)
container.start()
print("ready", flush=True)
eventlet.hubs.trampoline(sys.stdin.fileno(), read=True)  # a plain read would block every green thread
container.stop()
"""


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def broker_pid():
    out = subprocess.run(["pgrep", "-f", "beam.smp"], capture_output=True, text=True).stdout.split()
    return int(out[0]) if out else None


def run(amqp_uri, calls, request_confirms, reply_mode):
    service = subprocess.Popen([sys.executable, "-c", SERVICE, amqp_uri, reply_mode], cwd=ROOT,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert service.stdout.readline().strip() == "ready"
    payload = {"household_id": "H0001", "year": 2023, "per_capita_income": "5230.50"}
    broker = broker_pid()
    standalone = ClusterRpcProxy({"AMQP_URI": amqp_uri})
    with standalone:
        # what nameko's RpcProxy and services.common.rpc's TransientRpcProxy hand a worker
        proxy_cls = ServiceProxy if request_confirms else TransientServiceProxy
        echo = proxy_cls(standalone._worker_ctx, "rpcbench", standalone._reply_listener).echo
        for _ in range(50):  # warm up connections and pools
            echo(payload, {"actor": "bench"})
        me0, svc0, mq0 = resource.getrusage(resource.RUSAGE_SELF), cpu_seconds(service.pid), broker and cpu_seconds(broker)
        started = time.perf_counter()
        for _ in range(calls):
            echo(payload, {"actor": "bench"})
        wall = time.perf_counter() - started
        me1, svc1, mq1 = resource.getrusage(resource.RUSAGE_SELF), cpu_seconds(service.pid), broker and cpu_seconds(broker)
    service.stdin.close()
    service.wait(timeout=30)
    per_call = lambda seconds: round(seconds / calls * 1000, 3)  # noqa: E731
    return {"request": "confirmed, persistent" if request_confirms else "transient, no confirm",
            "reply": "confirmed, persistent" if reply_mode == "default" else "transient, no confirm",
            "calls": calls, "calls_per_s": round(calls / wall, 1), "wall_ms": per_call(wall),
            "caller_cpu_ms": per_call(me1.ru_utime + me1.ru_stime - me0.ru_utime - me0.ru_stime),
            "service_cpu_ms": per_call(svc1 - svc0),
            "rabbitmq_cpu_ms": per_call(mq1 - mq0) if broker else None}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--amqp-uri", default=os.environ.get("AMQP_URI", "amqp://guest:guest@127.0.0.1:5672//"))
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=2, help="each variant this many times, interleaved")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    variants = [(True, "default"), (False, "default"), (True, "transient"), (False, "transient")]
    results = []
    for round_ in range(args.rounds):
        for request_confirms, reply_mode in variants:
            result = {"round": round_ + 1, **run(args.amqp_uri, args.calls, request_confirms, reply_mode)}
            print(json.dumps(result, ensure_ascii=False), flush=True)
            results.append(result)
    if args.out:
        Path(args.out).write_text(json.dumps({"load_average_before": os.getloadavg(), "results": results},
                                             ensure_ascii=False, indent=1) + "\n")


if __name__ == "__main__":
    main()
