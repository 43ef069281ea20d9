#!/usr/bin/env python3
"""The node's HTTP and gRPC benchmarks (issue 4), ours and the peers in one run.

HTTP: wrk drives `POST /api/v1/actors/default/default/counter?invocation=call` on the node (a
native counter actor) and `POST /hello` on a plain axum route; gRPC: benches/src/bin/grpc_load
drives `InvocationService.Invoke` (mode CALL) on the node and on a bare tonic echo service of
the same proto. Each server runs alone on tokio multi-thread (one worker per core); the load
tool shares the machine's cores with it.

Usage: benches/node.py [--seconds N] [--repeats R]   (builds the release binaries; prints Markdown)
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


def median_row(rows):
    """The run with the median requests/s (its latencies come with it)."""
    return sorted(rows, key=lambda row: row["rps"])[len(rows) // 2]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    build()
    seconds = args.seconds
    data_dir = tempfile.mkdtemp(prefix="plexspaces-bench-")
    runs = {}

    # Every server is started once and idles while another is measured; ours and the peer
    # take turns at each load, and each row is the median of the repeats.
    node, ports = start([os.path.join(RELEASE, "plexspaces"), "start", "--invoke-port", "0", "--admin-port", "0",
                         "--grpc-port", "0", "--data-dir", data_dir, "--examples", "counter"])
    axum_peer, axum_address = start([os.path.join(RELEASE, "axum_hello"), "0"])
    tonic_peer, tonic_address = start([os.path.join(RELEASE, "tonic_echo"), "0"])
    body = '{"action":"increment"}'
    ours_http = f"http://{ports['invoke']}/api/v1/actors/default/default/counter?invocation=call"
    peer_http = f"http://{axum_address['main']}/hello"
    ours_grpc = f"http://{ports['grpc']}"
    peer_grpc = f"http://{tonic_address['main']}"
    try:
        for _ in range(args.repeats):
            for load, (connections, wrk_threads, grpc_connections) in (("1", (1, 1, 1)), ("64", (64, 2, 4))):
                runs.setdefault(f"http_ours_{load}", []).append(wrk(ours_http, connections, wrk_threads, seconds, body))
                runs.setdefault(f"http_peer_{load}", []).append(wrk(peer_http, connections, wrk_threads, seconds, body))
                runs.setdefault(f"grpc_ours_{load}", []).append(grpc_load(ours_grpc, connections, grpc_connections, seconds))
                runs.setdefault(f"grpc_peer_{load}", []).append(grpc_load(peer_grpc, connections, grpc_connections, seconds))
    finally:
        for process in (node, axum_peer, tonic_peer):
            stop(process)
    results = {key: median_row(rows) for key, rows in runs.items()}

    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split()[1]
    print(f"machine: {os.cpu_count()} cores; {seconds} s per run, median of {args.repeats} runs; wrk {wrk_version}\n")
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
    print(json.dumps(runs))


if __name__ == "__main__":
    main()
