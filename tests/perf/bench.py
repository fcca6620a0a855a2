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
TAG = f"tb{os.getpid() % 1000}"


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


def run(plugin: str, command: str, conf: dict[str, object], env: dict[str, str]) -> tuple[float, int]:
    """(seconds, peak RSS in KiB) of one exec, the RSS of its whole waited-for process tree."""
    full = {"PATH": os.environ["PATH"], "CNI_COMMAND": command, "CNI_PATH": "/usr/lib/cni", **env}
    start = time.perf_counter()
    proc = subprocess.Popen([plugin], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=full)
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(json.dumps(conf).encode())
    proc.stdin.close()
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(
            f"{plugin} {command} failed: {out.decode()} {proc.stderr.read().decode() if proc.stderr else ''}"
        )
    return elapsed, usage.ru_maxrss


def summary(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[max(0, int(len(ordered) * 0.9) - 1)] * 1000


def bench(variants: dict[str, str], rounds: int, data_dir: str) -> dict[str, dict[str, list[float]]]:
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
                t, rss = run(plugin, "VERSION", {"cniVersion": "1.0.0"}, {})
                results[name]["VERSION"].append(t)
                t, rss_add = run(plugin, "ADD", conf, env)
                results[name]["ADD"].append(t)
                t, rss_del = run(plugin, "DEL", conf, env)
                results[name]["DEL"].append(t)
                results[name]["rss"].append(max(rss, rss_add, rss_del))
    finally:
        subprocess.run(["ip", "netns", "del", pod], capture_output=True)
        subprocess.run(["ip", "link", "del", dev], capture_output=True)
    return results


def parallel_adds(plugin: str, count: int, data_dir: str) -> float:
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
        variants = {
            "reference Go host-device": REFERENCE,
            "ours: static single file": os.path.abspath(opts.binary),
            "ours: installed (unpacked)": os.path.join(bin_dir, "host-device"),
        }
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
        for name, plugin in variants.items():
            wall = parallel_adds(plugin, opts.parallel, os.path.join(work, f"storm-{len(name)}"))
            print(f"- {name}: {wall:.2f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
