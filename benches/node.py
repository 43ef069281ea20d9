#!/usr/bin/env python3
"""The node's HTTP and gRPC benchmarks (issue 4), ours and the peers in one run.

HTTP: wrk drives `POST /api/v1/actors/default/default/counter?invocation=call` on the node (a
native counter actor) and `POST /hello` on a plain axum route; gRPC: benches/src/bin/grpc_load
drives `InvocationService.Invoke` (mode CALL) on the node and on a bare tonic echo service of
the same proto. Each server runs alone on tokio multi-thread (one worker per core); the load
tool shares the machine's cores with it.

Usage: benches/node.py [--seconds N]   (builds the release binaries first; prints Markdown)
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/plexspaces-target"))
RELEASE = os.path.join(TARGET, "release")


def build():
    subprocess.run(
        ["cargo", "build", "--release", "--locked", "-p", "plexspaces-cli", "-p", "plexspaces-benches", "--bins"],
        cwd=ROOT, check=True, env={**os.environ, "CARGO_TARGET_DIR": TARGET})


def start(command):
    """Starts a server and returns (process, {name: host:port}) from its first stdout line."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = process.stdout.readline().strip()
    if line.startswith("ready "):
        return process, {"main": line.split(" ", 1)[1]}
    return process, json.loads(line)


def stop(process):
    process.terminate()
    process.wait(timeout=30)


def wrk(url, connections, threads, seconds, body):
    script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
    script.write('wrk.method = "POST"\n')
    script.write(f"wrk.body = {json.dumps(body)}\n")
    script.write('wrk.headers["Content-Type"] = "application/json"\n')
    script.close()
    output = subprocess.run(
        ["wrk", "--latency", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "-s", script.name, url],
        check=True, capture_output=True, text=True).stdout
    os.unlink(script.name)
    if "Non-2xx" in output or "Socket errors" in output:
        sys.exit(f"wrk saw errors against {url}:\n{output}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    percentiles = {}
    for label, value, unit in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)$", output, re.M):
        factor = {"us": 1, "ms": 1000, "s": 1_000_000}[unit]
        percentiles[label] = float(value) * factor
    return {"rps": rps, "p50_us": percentiles["50"], "p99_us": percentiles["99"]}


def grpc_load(url, concurrency, connections, seconds):
    output = subprocess.run(
        [os.path.join(RELEASE, "grpc_load"), url, str(concurrency), str(connections), str(seconds)],
        check=True, capture_output=True, text=True).stdout
    return json.loads(output)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    build()
    seconds = args.seconds
    data_dir = tempfile.mkdtemp(prefix="plexspaces-bench-")
    results = {}

    node, ports = start([os.path.join(RELEASE, "plexspaces"), "start", "--invoke-port", "0", "--admin-port", "0",
                         "--grpc-port", "0", "--data-dir", data_dir, "--examples", "counter"])
    try:
        url = f"http://{ports['invoke']}/api/v1/actors/default/default/counter?invocation=call"
        body = '{"action":"increment"}'
        results["http_ours_1"] = wrk(url, 1, 1, seconds, body)
        results["http_ours_64"] = wrk(url, 64, 2, seconds, body)
        grpc = f"http://{ports['grpc']}"
        results["grpc_ours_1"] = grpc_load(grpc, 1, 1, seconds)
        results["grpc_ours_64"] = grpc_load(grpc, 64, 4, seconds)
    finally:
        stop(node)

    peer, address = start([os.path.join(RELEASE, "axum_hello"), "0"])
    try:
        url = f"http://{address['main']}/hello"
        results["http_peer_1"] = wrk(url, 1, 1, seconds, '{"action":"increment"}')
        results["http_peer_64"] = wrk(url, 64, 2, seconds, '{"action":"increment"}')
    finally:
        stop(peer)

    peer, address = start([os.path.join(RELEASE, "tonic_echo"), "0"])
    try:
        grpc = f"http://{address['main']}"
        results["grpc_peer_1"] = grpc_load(grpc, 1, 1, seconds)
        results["grpc_peer_64"] = grpc_load(grpc, 64, 4, seconds)
    finally:
        stop(peer)

    print(f"machine: {os.cpu_count()} cores; {seconds} s per row; wrk {subprocess.run(['wrk', '-v'], capture_output=True, text=True).stdout.split()[1]}\n")
    print("| front door | load | ours req/s | peer req/s | ours/peer | ours p50 | peer p50 | ours p99 | peer p99 | p99 ours/peer |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for door, peer_name in (("http", "axum hello"), ("grpc", "tonic echo")):
        for load in ("1", "64"):
            ours, theirs = results[f"{door}_ours_{load}"], results[f"{door}_peer_{load}"]
            print(f"| {door.upper()} vs {peer_name} | {load} conn{'s' if load != '1' else ''} "
                  f"| {ours['rps']:,.0f} | {theirs['rps']:,.0f} | {ours['rps'] / theirs['rps']:.2f} "
                  f"| {ours['p50_us']:.0f} µs | {theirs['p50_us']:.0f} µs "
                  f"| {ours['p99_us']:.0f} µs | {theirs['p99_us']:.0f} µs | {ours['p99_us'] / theirs['p99_us']:.2f} |")
    print()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
