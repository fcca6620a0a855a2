"""`make bench`: our plugin against the reference Go plugin, side by side on this machine.

Variants run interleaved (A B C A B C ...) so that machine noise hits them alike.
Prints medians, p90 and ratios against the reference, peak RSS, and the wall time
of N ADDs of distinct devices started at once. Numbers, never assertions.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REFERENCE = "/usr/lib/cni/host-device"
TIME = "/usr/bin/time"  # GNU time (Debian package "time")
RSS_FILE = os.path.join(tempfile.gettempdir(), f"tbench-rss-{os.getpid()}")
TAG = f"tb{os.getpid() % 1000}"


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


Variant = tuple[str, dict[str, str]]  # the plugin's path, and what its environment adds


def run(
    variant: Variant, command: str, conf: dict[str, object], env: dict[str, str], *, measure_rss: bool = False
) -> tuple[float, int]:
    """(seconds, peak RSS in KiB) of one exec.

    The RSS comes from GNU time, a small process: a child forked from this Python
    process keeps its RSS high-water mark across exec, which would hide a plugin
    smaller than the benchmark itself. Those runs are not timed.
    """
    plugin, extra = variant
    full = {"PATH": os.environ["PATH"], "CNI_COMMAND": command, "CNI_PATH": "/usr/lib/cni", **extra, **env}
    argv = [TIME, "-f", "%M", "-o", RSS_FILE, plugin] if measure_rss else [plugin]
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=full)
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(json.dumps(conf).encode())
    proc.stdin.close()
    out = proc.stdout.read()
    _, status = os.waitpid(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(
            f"{plugin} {command} failed: {out.decode()} {proc.stderr.read().decode() if proc.stderr else ''}"
        )
    if measure_rss:
        with open(RSS_FILE) as f:
            return elapsed, int(f.read().split()[-1])
    return elapsed, 0


def summary(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[max(0, int(len(ordered) * 0.9) - 1)] * 1000


def bench(variants: dict[str, Variant], rounds: int, data_dir: str) -> dict[str, dict[str, list[float]]]:
    dev, peer, pod = f"{TAG}a", f"{TAG}b", f"{TAG}ns"
    ip("link", "add", dev, "type", "veth", "peer", "name", peer)
    ip("netns", "add", pod)
    results: dict[str, dict[str, list[float]]] = {
        name: {"VERSION": [], "ADD": [], "DEL": [], "rss": []} for name in variants
    }
    env = {"CNI_CONTAINERID": "bench", "CNI_NETNS": f"/run/netns/{pod}", "CNI_IFNAME": "net1"}
    try:
        for _ in range(rounds):
            for name, plugin in variants.items():
                conf = {
                    "cniVersion": "1.0.0",
                    "name": "bench",
                    "type": "host-device",
                    "device": dev,
                    "dataDir": data_dir,
                }
                results[name]["VERSION"].append(run(plugin, "VERSION", {"cniVersion": "1.0.0"}, {})[0])
                results[name]["ADD"].append(run(plugin, "ADD", conf, env)[0])
                results[name]["DEL"].append(run(plugin, "DEL", conf, env)[0])
        for name, plugin in variants.items():
            conf = {"cniVersion": "1.0.0", "name": "bench", "type": "host-device", "device": dev, "dataDir": data_dir}
            for command, stdin in (("VERSION", {"cniVersion": "1.0.0"}), ("ADD", conf), ("DEL", conf)):
                results[name]["rss"].append(run(plugin, command, stdin, env, measure_rss=True)[1])
    finally:
        subprocess.run(["ip", "netns", "del", pod], capture_output=True)
        subprocess.run(["ip", "link", "del", dev], capture_output=True)
    return results


def parallel_adds(variant: Variant, count: int, data_dir: str) -> float:
    plugin, extra = variant
    devs = [f"{TAG}p{n}" for n in range(count)]
    pods = [f"{TAG}q{n}" for n in range(count)]
    for n in range(count):
        ip("link", "add", devs[n], "type", "veth", "peer", "name", f"{TAG}r{n}")
        ip("netns", "add", pods[n])
    try:
        start = time.perf_counter()
        procs = []
        for n in range(count):
            conf = {
                "cniVersion": "1.0.0",
                "name": "storm",
                "type": "host-device",
                "device": devs[n],
                "dataDir": data_dir,
            }
            env = {
                "PATH": os.environ["PATH"],
                "CNI_COMMAND": "ADD",
                "CNI_CONTAINERID": f"s{n}",
                "CNI_NETNS": f"/run/netns/{pods[n]}",
                "CNI_IFNAME": "net1",
                "CNI_PATH": "/usr/lib/cni",
                **extra,
            }
            proc = subprocess.Popen([plugin], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env)
            assert proc.stdin is not None
            proc.stdin.write(json.dumps(conf).encode())
            proc.stdin.close()
            procs.append(proc)
        failures = sum(1 for proc in procs if proc.wait() != 0)
        wall = time.perf_counter() - start
        if failures:
            print(f"  ({failures} of {count} parallel ADDs failed with {plugin})", file=sys.stderr)
        return wall
    finally:
        for n in range(count):
            subprocess.run(["ip", "netns", "del", pods[n]], capture_output=True)
            subprocess.run(["ip", "link", "del", devs[n]], capture_output=True)


def report(variants: dict[str, Variant], opts: argparse.Namespace, work: str) -> None:
    results = bench(variants, opts.rounds, os.path.join(work, "state"))
    ref = {cmd: summary(results["reference Go host-device"][cmd])[0] for cmd in ("VERSION", "ADD", "DEL")}
    print(f"\n{opts.rounds} interleaved rounds, veth, no IPAM; medians (p90) in ms, ratio = ours / reference\n")
    print("| variant | VERSION | ADD | DEL | ADD ratio | DEL ratio | peak RSS |")
    print("|---|---|---|---|---|---|---|")
    for name, data in results.items():
        cells = []
        for cmd in ("VERSION", "ADD", "DEL"):
            median, p90 = summary(data[cmd])
            cells.append(f"{median:.1f} ({p90:.1f})")
        add_ratio = summary(data["ADD"])[0] / ref["ADD"]
        del_ratio = summary(data["DEL"])[0] / ref["DEL"]
        rss = max(data["rss"]) / 1024
        print(f"| {name} | {' | '.join(cells)} | {add_ratio:.2f}x | {del_ratio:.2f}x | {rss:.1f} MB |")
    print(f"\n{opts.parallel} ADDs of distinct devices started at once (wall time):\n")
    for name, variant in variants.items():
        wall = parallel_adds(variant, opts.parallel, os.path.join(work, f"storm-{len(name)}"))
        print(f"- {name}: {wall:.2f} s")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default="dist/host-device")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--parallel", type=int, default=20)
    opts = parser.parse_args()
    work = tempfile.mkdtemp(prefix="tbench")
    try:
        bin_dir = os.path.join(work, "bin")
        os.mkdir(bin_dir)
        subprocess.run([opts.binary, "install", "--bin-dir", bin_dir], check=True, capture_output=True)
        single = os.path.abspath(opts.binary)
        sock = os.path.join(work, "server.sock")
        installed = os.path.join(bin_dir, "host-device")
        alone = {"CNI_HOSTDEV_SERVER": "off"}  # whatever serves on this machine stays out of these rows
        served = {"CNI_HOSTDEV_SERVER": sock}
        variants: dict[str, Variant] = {
            "reference Go host-device": (REFERENCE, {}),
            "ours: static single file": (single, alone),
            "ours: installed (unpacked)": (installed, alone),
            "ours: single file + `host-device serve`": (single, served),
            "ours: installed + `host-device serve`": (installed, served),
        }
        server = subprocess.Popen([single, "serve", "--socket", sock], stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while not os.path.exists(sock):
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("host-device serve did not start")
                time.sleep(0.05)
            report(variants, opts, work)
            with open(f"/proc/{server.pid}/status") as f:
                hwm = next(line.split()[1] for line in f if line.startswith("VmHWM:"))
            print(f"\nThe server's own peak RSS: {int(hwm) / 1024:.1f} MB (children: copy-on-write forks).")
        finally:
            server.terminate()
            server.wait()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
