"""`make bench`: our plugin against the reference Go plugin, side by side on this machine.

Variants run interleaved (A B C A B C ...) so that machine noise hits them alike.
Prints medians, p90 and ratios against the reference, peak RSS, and the wall time
of N ADDs of distinct devices started at once. Numbers, never assertions.

`--profile` then splits each exec of ours into phases (where the time over the
reference goes): see `profile()`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

REFERENCE = "/usr/lib/cni/host-device"
TIME = "/usr/bin/time"  # GNU time (Debian package "time")
STRACE = shutil.which("strace") or "/usr/bin/strace"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RSS_FILE = os.path.join(tempfile.gettempdir(), f"tbench-rss-{os.getpid()}")
TAG = f"tb{os.getpid() % 1000}"
COMMANDS = ("VERSION", "ADD", "DEL")


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


def quiet_ip(*args: str) -> None:
    subprocess.run(["ip", *args], capture_output=True)


def link_exists(name: str) -> bool:
    return subprocess.run(["ip", "link", "show", "dev", name], capture_output=True).returncode == 0


class Names:
    """Fresh link and netns names for every use: a name whose previous veth is still being torn
    down with its netns (teardown is asynchronous) cannot be created again at once."""

    def __init__(self) -> None:
        self.serial = 0
        self.links: list[str] = []
        self.netns: list[str] = []

    def veth(self) -> str:
        self.serial += 1
        end = f"{TAG}{self.serial}a"
        ip("link", "add", end, "type", "veth", "peer", "name", f"{TAG}{self.serial}b")
        self.links.append(end)
        return end

    def pod(self) -> str:
        self.serial += 1
        name = f"{TAG}{self.serial}ns"
        ip("netns", "add", name)
        self.netns.append(name)
        return name

    def cleanup(self) -> None:
        for name in self.netns:
            quiet_ip("netns", "del", name)
        for name in self.links:
            quiet_ip("link", "del", name)  # also removes the peer
        deadline = time.monotonic() + 10
        while any(link_exists(n) for n in self.links) and time.monotonic() < deadline:
            time.sleep(0.05)


@contextmanager
def fresh_names() -> Iterator[Names]:
    names = Names()
    try:
        yield names
    finally:
        names.cleanup()


Variant = str  # the plugin's path


def spawn(
    plugin: Variant, command: str, conf: dict[str, object], env: dict[str, str], argv_prefix: list[str] | None = None
) -> tuple[float, float]:
    """(time.time() before the fork, time.time() once reaped) of one exec that must succeed."""
    full = {"PATH": os.environ["PATH"], "CNI_COMMAND": command, "CNI_PATH": "/usr/lib/cni", **env}
    argv = [*(argv_prefix or []), plugin]
    start = time.time()
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=full)
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    try:
        proc.stdin.write(json.dumps(conf).encode())
        proc.stdin.close()
    except BrokenPipeError:
        pass  # VERSION is answered without reading stdin: the plugin may be gone before we write
    out = proc.stdout.read()
    _, status = os.waitpid(proc.pid, 0)
    reaped = time.time()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{plugin} {command} failed: {out.decode()} {proc.stderr.read().decode()}")
    return start, reaped


def peak_rss(plugin: Variant, command: str, conf: dict[str, object], env: dict[str, str]) -> int:
    """KiB, from GNU time (a small process): a child forked from this Python process keeps its
    RSS high-water mark across exec, which would hide a plugin smaller than the benchmark."""
    spawn(plugin, command, conf, env, [TIME, "-f", "%M", "-o", RSS_FILE])
    with open(RSS_FILE) as f:
        return int(f.read().split()[-1])


def summary(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[max(0, int(len(ordered) * 0.9) - 1)] * 1000


def conf_for(dev: str, data_dir: str, name: str = "bench") -> dict[str, object]:
    return {"cniVersion": "1.0.0", "name": name, "type": "host-device", "device": dev, "dataDir": data_dir}


def bench(variants: dict[str, Variant], rounds: int, data_dir: str) -> dict[str, dict[str, list[float]]]:
    results: dict[str, dict[str, list[float]]] = {name: {c: [] for c in (*COMMANDS, "rss")} for name in variants}
    with fresh_names() as names:
        dev, pod = names.veth(), names.pod()
        env = {"CNI_CONTAINERID": "bench", "CNI_NETNS": f"/run/netns/{pod}", "CNI_IFNAME": "net1"}
        conf = conf_for(dev, data_dir)
        order = list(variants.items())
        for round_number in range(rounds):
            # Each round starts with the next variant: a call right after another plugin's DEL of
            # the same device pays for what that DEL left behind (measured: ~3-6 ms on an ADD after
            # the reference's DEL, which leaves the device down), so no variant keeps one place.
            turn = round_number % len(order)
            for name, plugin in order[turn:] + order[:turn]:
                for command in COMMANDS:
                    start, reaped = spawn(
                        plugin, command, {"cniVersion": "1.0.0"} if command == "VERSION" else conf, env
                    )
                    results[name][command].append(reaped - start)
        for name, plugin in variants.items():
            for command in COMMANDS:
                results[name]["rss"].append(peak_rss(plugin, command, conf, env))
    return results


def parallel_adds(plugin: Variant, count: int, data_dir: str) -> float:
    with fresh_names() as names:
        devs = [names.veth() for _ in range(count)]
        pods = [names.pod() for _ in range(count)]
        start = time.perf_counter()
        procs = []
        for n in range(count):
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
            proc.stdin.write(json.dumps(conf_for(devs[n], data_dir, "storm")).encode())
            proc.stdin.close()
            procs.append(proc)
        failures = sum(1 for proc in procs if proc.wait() != 0)
        wall = time.perf_counter() - start
        if failures:
            print(f"  ({failures} of {count} parallel ADDs failed with {plugin})", file=sys.stderr)
        return wall


def report(variants: dict[str, Variant], opts: argparse.Namespace, work: str) -> None:
    results = bench(variants, opts.rounds, os.path.join(work, "state"))
    ref = {cmd: summary(results["reference Go host-device"][cmd])[0] for cmd in COMMANDS}
    print(f"\n{opts.rounds} interleaved rounds, veth, no IPAM; medians (p90) in ms, ratio = ours / reference\n")
    print("| variant | VERSION | ADD | DEL | VERSION ratio | ADD ratio | DEL ratio | peak RSS |")
    print("|---|---|---|---|---|---|---|---|")
    for name, data in results.items():
        cells = [f"{summary(data[cmd])[0]:.1f} ({summary(data[cmd])[1]:.1f})" for cmd in COMMANDS]
        ratios = [f"{summary(data[cmd])[0] / ref[cmd]:.2f}x" for cmd in COMMANDS]
        print(f"| {name} | {' | '.join(cells)} | {' | '.join(ratios)} | {max(data['rss']) / 1024:.1f} MB |")
    print(f"\n{opts.parallel} ADDs of distinct devices started at once (wall time):\n")
    for n, (name, plugin) in enumerate(variants.items()):
        print(f"- {name}: {parallel_adds(plugin, opts.parallel, os.path.join(work, f'storm-{n}')):.2f} s")


# --- scale ---------------------------------------------------------------------------------------

SCALES = (0, 100, 1000)  # live attachments in the data dir
HOST_LINKS = 1000  # links in the host namespace, for the other axis
NETWORKS = 4


def run_plugin(plugin: Variant, command: str, conf: dict[str, object], env: dict[str, str]) -> tuple[float, str]:
    """Seconds of one exec that must succeed, and its stdout."""
    full = {"PATH": os.environ["PATH"], "CNI_COMMAND": command, "CNI_PATH": "/usr/lib/cni", **env}
    start = time.perf_counter()
    proc = subprocess.run([plugin], input=json.dumps(conf).encode(), capture_output=True, env=full)
    took = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{plugin} {command} failed: {proc.stdout.decode()} {proc.stderr.decode()}")
    return took, proc.stdout.decode()


def populate(ours: Variant, data_dir: str, count: int, names: Names) -> None:
    """`count` live attachments in `data_dir`, over NETWORKS networks: one real (a veth in a live pod,
    added by our plugin), the rest its record copied with other containers and devices, all pinned
    to that live pod, as a node with many VFs in pods has them."""
    if not count:
        return
    dev, pod = names.veth(), names.pod()
    env = {"CNI_CONTAINERID": "live-0", "CNI_NETNS": f"/run/netns/{pod}", "CNI_IFNAME": "net1"}
    run_plugin(ours, "ADD", conf_for(dev, data_dir, "scale-0"), env)
    with open(os.path.join(data_dir, "scale-0", "live-0-net1.json")) as f:
        real = json.load(f)
    for n in range(1, count):
        network = f"scale-{n % NETWORKS}"
        os.makedirs(os.path.join(data_dir, network), 0o700, exist_ok=True)
        copy = {
            **real,
            "network": network,
            "container_id": f"live-{n}",
            "original_name": f"vf{n}",
            "mac": f"02:00:00:00:{n // 256:02x}:{n % 256:02x}",
            "ifindex": 100000 + n,
        }
        with open(os.path.join(data_dir, network, f"live-{n}-net1.json"), "w") as f:
            json.dump(copy, f)


def host_links(count: int, names: Names) -> None:
    """`count` links in the host (veth pairs), at once through `ip -batch`."""
    first = names.serial + 1
    names.serial += count // 2
    batch = "".join(f"link add {TAG}{n}a type veth peer name {TAG}{n}b\n" for n in range(first, first + count // 2))
    subprocess.run(["ip", "-batch", "-"], input=batch.encode(), check=True, capture_output=True)
    names.links += [f"{TAG}{n}a" for n in range(first, first + count // 2)]


class Measured:
    """One more device, in its own pod, to ADD, CHECK and DEL against one data dir."""

    def __init__(self, data_dir: str, names: Names) -> None:
        dev, pod = names.veth(), names.pod()
        self.env = {"CNI_CONTAINERID": "measured", "CNI_NETNS": f"/run/netns/{pod}", "CNI_IFNAME": "net1"}
        self.conf = conf_for(dev, data_dir)

    def cycle(self, plugin: Variant, into: dict[str, list[float]]) -> None:
        took, out = run_plugin(plugin, "ADD", self.conf, self.env)
        into["ADD"].append(took)
        into["CHECK"].append(run_plugin(plugin, "CHECK", {**self.conf, "prevResult": json.loads(out)}, self.env)[0])
        into["DEL"].append(run_plugin(plugin, "DEL", self.conf, self.env)[0])


Times = dict[str, dict[str, dict[str, list[float]]]]  # row -> variant -> command -> seconds


def interleaved(variants: dict[str, Variant], rows: dict[str, Measured], rounds: int) -> Times:
    """Every round runs every row and every variant, each round starting at the next: a slow spell
    of the machine hits all rows alike (the "vs 0" ratios compare rows)."""
    times: Times = {row: {name: {"ADD": [], "CHECK": [], "DEL": []} for name in variants} for row in rows}
    for measured in rows.values():  # once each, unmeasured: a first call indexes what it must
        for plugin in variants.values():
            measured.cycle(plugin, {"ADD": [], "CHECK": [], "DEL": []})
    pairs = [(row, name) for row in rows for name in variants]
    for round_number in range(rounds):
        turn = round_number % len(pairs)
        for row, name in pairs[turn:] + pairs[:turn]:
            rows[row].cycle(variants[name], times[row][name])
    return times


def node_tools(ours: Variant, data_dir: str, rounds: int) -> dict[str, float]:
    """Medians (ms) of what may be linear in the attachments: GC (every attachment valid, so it
    weighs each and gives nothing back), one repair pass, doctor, inventory."""
    valid = []
    for network in sorted(os.listdir(data_dir)) if os.path.isdir(data_dir) else []:
        if not network.startswith("."):
            names = os.listdir(os.path.join(data_dir, network))
            valid += [{"containerID": n[: -len("-net1.json")], "ifname": "net1"} for n in names if n.endswith(".json")]
    tool_env = {"PATH": os.environ["PATH"]}
    conf_dir = tempfile.mkdtemp(prefix="tbench-conf")  # no network to check: the data dir's cost alone
    calls: dict[str, Callable[[], object]] = {
        "GC": lambda: run_plugin(
            ours,
            "GC",
            {**conf_for("none", data_dir, "scale-0"), "cniVersion": "1.1.0", "cni.dev/valid-attachments": valid},
            {},
        ),
        "repair --once": lambda: subprocess.run(
            [ours, "repair", "--once", "--data-dir", data_dir], env=tool_env, capture_output=True
        ),
        "doctor": lambda: subprocess.run(
            [ours, "doctor", "--conf-dir", conf_dir, "--data-dir", data_dir], env=tool_env, capture_output=True
        ),
        "inventory": lambda: subprocess.run(
            [ours, "inventory", "--data-dir", data_dir], env=tool_env, capture_output=True
        ),
    }
    medians = {}
    for label, call in calls.items():
        samples = []
        for _ in range(max(3, rounds // 4)):
            start = time.perf_counter()
            call()
            samples.append(time.perf_counter() - start)
        medians[label] = statistics.median(samples) * 1000
    os.rmdir(conf_dir)
    return medians


def scale(variants: dict[str, Variant], rounds: int, work: str) -> None:
    """ADD, CHECK and DEL of one more device with 0, 100 and 1000 live attachments in the data dir,
    and with 1000 links in the host: ours against the reference, interleaved, in one run."""
    ours = variants["ours: static single file"]
    print(f"\nScale: ADD, CHECK and DEL of one more device; medians of {rounds} rounds in ms, the attachment")
    print("rows interleaved with each other, then the host links row; ratio = against the reference in the")
    print("same row; vs 0 = against the same variant with an empty data dir\n")
    print("| node | variant | ADD | CHECK | DEL | ADD ratio | DEL ratio | ADD vs 0 | DEL vs 0 |")
    print("|---|---|---|---|---|---|---|---|---|")
    empty: dict[str, dict[str, float]] = {}
    tools: dict[int, dict[str, float]] = {}
    with fresh_names() as names:
        rows: dict[str, Measured] = {}
        for count in SCALES:
            data_dir = os.path.join(work, f"scale-{count}")
            populate(ours, data_dir, count, names)
            rows[f"{count} live attachments"] = Measured(data_dir, names)
        times = interleaved(variants, rows, rounds)
        # The criterion itself, with nothing else in between: ours alone, empty against full.
        ends = {row: rows[row] for row in (f"{SCALES[0]} live attachments", f"{SCALES[-1]} live attachments")}
        alone = interleaved({"ours": ours}, ends, 2 * rounds)
        for count in SCALES:
            tools[count] = node_tools(ours, os.path.join(work, f"scale-{count}"), rounds)
        host_links(HOST_LINKS, names)  # then the other axis, against the same empty data dir
        links = f"{HOST_LINKS} links in the host"
        times |= interleaved(variants, {links: Measured(os.path.join(work, "links"), names)}, rounds)
    ref_name = "reference Go host-device"
    for label, by_variant in times.items():
        medians = {name: {c: statistics.median(v) * 1000 for c, v in data.items()} for name, data in by_variant.items()}
        for name, m in medians.items():
            empty.setdefault(name, m)
            ratio = [f"{m[c] / medians[ref_name][c]:.2f}x" for c in ("ADD", "DEL")]
            base = [f"{m[c] / empty[name][c]:.2f}x" for c in ("ADD", "DEL")]
            cells = f"{m['ADD']:.1f} | {m['CHECK']:.1f} | {m['DEL']:.1f}"
            print(f"| {label} | {name} | {cells} | {' | '.join(ratio)} | {' | '.join(base)} |")
    print(
        f"\nOurs alone, {SCALES[0]} against {SCALES[-1]} live attachments, {2 * rounds} interleaved pairs, "
        "medians in ms:\n"
    )
    empty_row, full_row = (alone[row]["ours"] for row in alone)
    for command in ("ADD", "CHECK", "DEL"):
        low, high = statistics.median(empty_row[command]) * 1000, statistics.median(full_row[command]) * 1000
        print(f"- {command}: {low:.1f} -> {high:.1f} ({high / low:.3f}x)")
    print("\nOurs, what may be linear in the attachments (medians in ms; GC weighs every attachment as valid):\n")
    print("| live attachments | " + " | ".join(tools[SCALES[0]]) + " |")
    print("|---|" + "---|" * len(tools[SCALES[0]]))
    for count, timing in tools.items():
        print(f"| {count} | " + " | ".join(f"{ms:.0f}" for ms in timing.values()) + " |")


# --- --profile ---------------------------------------------------------------------------------

PHASES = (
    ("exec to entry script", "spawn", "start"),
    ("imports and input", "start", "ready"),
    ("the command's work", "ready", "done"),
    ("answer and exit", "done", "reaped"),
)
# The command's work, step by step (the marks ADD and DEL set between "ready" and "done").
STEPS = {
    "ADD": (
        ("ready", "opened", "pod and host namespaces opened, no earlier record of this attachment"),
        ("opened", "chosen", "device found and locked, claims and the host's use of it checked"),
        ("chosen", "recorded", "record written and fsync'd (the strategy from the probe's cache)"),
        ("recorded", "moved", "the move (one kernel call), up, the record updated"),
        ("moved", "done", "IPAM (none here), the answer"),
    ),
    "DEL": (
        ("ready", "opened", "record read, device locked, namespaces opened"),
        ("opened", "moved", "found in the pod, moved home (one kernel call), restored"),
        ("moved", "done", "record removed"),
    ),
}
START_UP = (
    ("fork and exec of the launcher", "spawn", "exec1"),
    ("launcher (finds its payload, execs it)", "exec1", "exec2"),
    ("PyInstaller bootloader, first pass (re-execs itself)", "exec2", "exec3"),
    ("interpreter and PyInstaller bootstrap", "exec3", "start"),
)


def profiled_run(
    plugin: Variant, command: str, conf: dict[str, object], env: dict[str, str], work: str, traced: bool
) -> dict[str, float]:
    marks_file, trace_file = os.path.join(work, "marks"), os.path.join(work, "trace")
    for path in (marks_file, trace_file):
        if os.path.exists(path):
            os.unlink(path)
    prefix = [STRACE, "-f", "-ttt", "-qq", "--seccomp-bpf", "-e", "trace=execve", "-o", trace_file] if traced else []
    start, reaped = spawn(plugin, command, conf, {**env, "CNI_HOSTDEV_PROFILE": marks_file}, prefix)
    marks: dict[str, float] = {"spawn": start, "reaped": reaped}
    if os.path.exists(marks_file):  # else the launcher answered by itself (VERSION): Python never ran
        with open(marks_file) as f:
            marks.update(json.loads(f.read().splitlines()[-1]))
    if traced:
        with open(trace_file) as f:
            execs = [float(m.group(1)) for m in re.finditer(r"^\d+\s+([\d.]+) execve\(", f.read(), re.M)]
        # strace's own first execve is of the plugin; the rest are the launcher's and the bootloader's
        for n, at in enumerate(execs[:3], start=1):
            marks[f"exec{n}"] = at
    return marks


def _median_ms(runs: list[dict[str, float]], begin: str, end: str) -> str:
    """The median of one phase, or "-" where the phase did not happen (the launcher answered)."""
    spans = [r[end] - r[begin] for r in runs if begin in r and end in r]
    return f"{statistics.median(spans) * 1000:.1f}" if len(spans) == len(runs) else "-"


def profile(variants: dict[str, Variant], rounds: int, work: str) -> None:
    """Medians of each phase of our execs, and where start-up itself goes (a second set of runs
    under `strace -e execve`, which times the launcher's and the bootloader's execs)."""
    ours = {name: plugin for name, plugin in variants.items() if name.startswith(("ours", "compared"))}
    print(f"\n--profile: where an exec of ours spends its time; medians of {rounds} runs in ms\n")
    with fresh_names() as names:
        dev, pod = names.veth(), names.pod()
        env = {"CNI_CONTAINERID": "profile", "CNI_NETNS": f"/run/netns/{pod}", "CNI_IFNAME": "net1"}
        conf = conf_for(dev, os.path.join(work, "profile-state"))
        for name, plugin in ours.items():
            plain: dict[str, list[dict[str, float]]] = {c: [] for c in COMMANDS}
            traced: dict[str, list[dict[str, float]]] = {c: [] for c in COMMANDS}
            for _ in range(rounds):
                for runs, strace in ((plain, False), (traced, True)):
                    for command in COMMANDS:
                        stdin: dict[str, object] = {"cniVersion": "1.0.0"} if command == "VERSION" else conf
                        runs[command].append(profiled_run(plugin, command, stdin, env, work, strace))
            print(f"{name}:\n")
            print("| phase | " + " | ".join(COMMANDS) + " |")
            print("|---|" + "---|" * len(COMMANDS))
            for label, begin, end in PHASES:
                print(f"| {label} | " + " | ".join(_median_ms(plain[c], begin, end) for c in COMMANDS) + " |")
            totals = [statistics.median(r["reaped"] - r["spawn"] for r in plain[c]) * 1000 for c in COMMANDS]
            print("| **total** | " + " | ".join(f"**{x:.1f}**" for x in totals) + " |")
            print("\nThe command's work, step by step:\n")
            print("| command | step | ms |")
            print("|---|---|---|")
            for command, steps in STEPS.items():
                for begin, end, label in steps:
                    print(f"| {command} | {label} | {_median_ms(plain[command], begin, end)} |")
            print("\nStart-up, under strace (which slows each exec a little):\n")
            print("| step | " + " | ".join(COMMANDS) + " |")
            print("|---|" + "---|" * len(COMMANDS))
            for label, begin, end in START_UP:
                print(f"| {label} | " + " | ".join(_median_ms(traced[c], begin, end) for c in COMMANDS) + " |")
            print()
    imports_of_add(rounds)


def imports_of_add(rounds: int) -> None:
    """What an ADD imports, by package, from the source tree (`python -S -X importtime`, no site
    as in the frozen program): the self time of every module, summed per top-level package."""
    import sysconfig

    site_packages = sysconfig.get_paths()["purelib"]
    entry = f"import sys; sys.path[:0] = [{ROOT!r}, {site_packages!r}]; from cni_hostdev.cli import main; main()"
    samples: dict[str, list[int]] = {}
    with fresh_names() as names:
        dev, pod = names.veth(), names.pod()
        env = {
            "PATH": os.environ["PATH"],
            "CNI_PATH": "/usr/lib/cni",
            "CNI_CONTAINERID": "imports",
            "CNI_NETNS": f"/run/netns/{pod}",
            "CNI_IFNAME": "net1",
        }
        state = tempfile.mkdtemp(prefix="tbench-imports")
        try:
            conf = json.dumps(conf_for(dev, state)).encode()
            for _ in range(rounds):
                totals: dict[str, int] = {}
                for command in ("ADD", "DEL"):
                    argv = [sys.executable, "-S", "-X", "importtime", "-c", entry]
                    proc = subprocess.run(argv, input=conf, capture_output=True, env={**env, "CNI_COMMAND": command})
                    if command == "DEL":
                        continue
                    for line in proc.stderr.decode().splitlines():
                        m = re.match(r"import time:\s+(\d+) \|\s+\d+ \|\s+(\S+)$", line)
                        if m:
                            package = m.group(2).split(".")[0]
                            totals[package] = totals.get(package, 0) + int(m.group(1))
                for package, micros in totals.items():
                    samples.setdefault(package, []).append(micros)
        finally:
            shutil.rmtree(state, ignore_errors=True)
    medians = sorted(((statistics.median(v) / 1000, k) for k, v in samples.items()), reverse=True)
    print("What an ADD imports: self time of its modules summed per package, source tree without site")
    print("(`python -S -X importtime`; the frozen program's own numbers run about as high), ms:\n")
    print("| package | ms |")
    print("|---|---|")
    for ms, package in medians:
        if ms >= 0.3:
            print(f"| {package} | {ms:.1f} |")
    rest = sum(ms for ms, _ in medians if ms < 0.3)
    print(f"| everything else ({sum(1 for ms, _ in medians if ms < 0.3)} packages) | {rest:.1f} |")
    print(f"| **all** | **{sum(ms for ms, _ in medians):.1f}** |")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default="dist/host-device")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--parallel", type=int, default=20)
    parser.add_argument("--profile", action="store_true", help="also split our execs into phases")
    parser.add_argument("--no-bench", action="store_true", help="with --profile: only the phases")
    parser.add_argument("--compare", metavar="FILE", help="another single file (an older build) as one more row")
    parser.add_argument("--scale", action="store_true", help="also ADD/CHECK/DEL at 0, 100, 1000 attachments")
    opts = parser.parse_args()
    work = tempfile.mkdtemp(prefix="tbench")
    try:
        bin_dir = os.path.join(work, "bin")
        os.mkdir(bin_dir)
        subprocess.run([opts.binary, "install", "--bin-dir", bin_dir], check=True, capture_output=True)
        variants: dict[str, Variant] = {
            "reference Go host-device": REFERENCE,
            "ours: static single file": os.path.abspath(opts.binary),
            "ours: installed (unpacked)": os.path.join(bin_dir, "host-device"),
        }
        if opts.compare:
            variants[f"compared: {opts.compare}"] = os.path.abspath(opts.compare)
        if not opts.no_bench:
            report(variants, opts, work)
        if opts.scale:
            scaled = {k: v for k, v in variants.items() if k != "ours: installed (unpacked)"}
            scale(scaled, 3 * opts.rounds, work)
        if opts.profile:
            profile(variants, opts.rounds, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
