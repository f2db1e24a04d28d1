#!/usr/bin/env python3
"""Soak benchmark (issue 12 item 6): COUNT deployments through one real daemon.

One `codedeploy-agent run` (release build) polls the emulator (`codedeploy-emulator serve`,
release build, history bounded with --keep-finished) and downloads from moto with SigV4 on.
Deployments alternate two revisions of a FILES-file tgz bundle whose four hooks print
HOOK_LINES lines each. Every EVERY deployments it prints one row: the agent's RSS, open fds
(/proc/PID/fd), threads, disk use under root_dir (and of it the deployments log, which
grows until it rotates at 64 MiB) and log_dir, the number of revision
directories kept, the log files in log_dir, and the emulator's RSS. At the end it prints
whether retention held max_revisions and whether the logs rotated. It prints figures and
asserts nothing about time; it exits 1 if a deployment did not succeed.

Usage: cargo build --release --workspace --bins && python3 benches/soak.py [--count 1000]
       [--every 50] [--files 1000] [--hook-lines 200] [--max-revisions 5] [--keep-finished 100]
"""

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as b  # noqa: E402


def revisions_kept(root):
    """Revision directories under root_dir/<group id>/ (the emulator's group ids: dg-...)."""
    n = 0
    try:
        for g in os.listdir(root):
            gp = os.path.join(root, g)
            if not g.startswith("dg-") or not os.path.isdir(gp):
                continue
            n += sum(1 for d in os.listdir(gp) if os.path.isdir(os.path.join(gp, d)))
    except OSError:
        pass
    return n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--every", type=int, default=50)
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--hook-lines", type=int, default=200)
    ap.add_argument("--max-revisions", type=int, default=5)
    ap.add_argument("--keep-finished", type=int, default=100)
    ap.add_argument("--log-max-bytes", type=int, default=1 << 20)
    ap.add_argument("--workdir", default=None)
    a = ap.parse_args()
    b.install_signal_handlers()
    tmp = tempfile.TemporaryDirectory(prefix="soak-", dir=a.workdir)
    w = tmp.name
    failed = []
    try:
        moto = b.Moto(w)
        emu = b.Emulator(w, poll_idle_secs=45, keep_finished=a.keep_finished)
        arn, key, secret = moto.agent_user("soak-host")
        emu.register(arn, key, secret)
        dest = os.path.join(w, "dest")
        revs = []
        for tag in ("rev-a", "rev-b"):
            body = b.bundle(dest, a.files, a.hook_lines, tag)
            revs.append((f"{tag}.tgz",) + moto.upload(f"{tag}.tgz", body))
        agent_dir = os.path.join(w, "agent")
        cfg = b.write_agent(
            agent_dir, emu.endpoint, emu.ca_cert, moto.endpoint, arn, key, secret,
            extra=(f"wait_between_runs: 1\nmax_revisions: {a.max_revisions}\n"
                   f"log_max_bytes: {a.log_max_bytes}\nlog_keep_files: 3\n"))
        agent = b.start_agent(cfg, os.path.join(w, "agent.out"))
        root, logs = os.path.join(agent_dir, "root"), os.path.join(agent_dir, "log")
        print(f"# soak: {a.count} deployments, {a.files}-file bundle, {a.hook_lines} lines per "
              f"hook x 4 hooks, max_revisions {a.max_revisions}, emulator keeps "
              f"{a.keep_finished} finished deployments")
        print(f"# {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}; {b.machine()}")
        head = ("deploys", "secs", "agent_rss_kib", "agent_hwm_kib", "fds", "threads",
                "root_mib", "of_it_deploy_logs_mib", "log_mib", "revs_kept", "log_files",
                "emu_rss_kib")
        print(" | ".join(head))
        t0 = time.time()
        max_kept = 0
        durations = []
        for i in range(1, a.count + 1):
            name, version, etag = revs[i % 2]
            s = time.time()
            dep = emu.deploy(name, version, etag)
            d = emu.wait_done(dep, within=600, poll=0.05)
            durations.append(time.time() - s)
            if d["status"] != "Succeeded":
                failed.append((i, dep, d["status"], d.get("status_reason")))
                print(f"deployment {i} ({dep}) {d['status']}: {d.get('status_reason')}")
                if len(failed) >= 3:
                    break
            kept = revisions_kept(root)
            max_kept = max(max_kept, kept)
            if i % a.every == 0 or i == a.count:
                pid = agent.pid
                row = (i, f"{time.time() - t0:.0f}", b.status_kib(pid, "VmRSS:"),
                       b.status_kib(pid, "VmHWM:"), b.count_dir(f"/proc/{pid}/fd"),
                       b.count_dir(f"/proc/{pid}/task"), f"{b.du_bytes(root) / 2**20:.1f}",
                       f"{b.du_bytes(os.path.join(root, 'deployment-logs')) / 2**20:.1f}",
                       f"{b.du_bytes(logs) / 2**20:.1f}", kept, b.count_dir(logs),
                       b.status_kib(emu.proc.pid, "VmRSS:"))
                print(" | ".join(str(x) for x in row), flush=True)
        durations.sort()
        if durations:
            print(f"# deployment wall time: median {durations[len(durations) // 2]:.2f} s, "
                  f"p90 {durations[len(durations) * 9 // 10]:.2f} s, max {durations[-1]:.2f} s")
        print(f"# retention: at most {max_kept} revision directories seen "
              f"(max_revisions {a.max_revisions}): "
              f"{'held' if max_kept <= a.max_revisions else 'EXCEEDED'}")
        rotated = []
        for d in (logs, os.path.join(root, "deployment-logs")):
            names = sorted(os.listdir(d)) if os.path.isdir(d) else []
            print(f"# {d}: " + ", ".join(
                f"{n} {os.path.getsize(os.path.join(d, n))} B" for n in names))
            rotated += [n for n in names if not n.endswith(".log")]
        print(f"# logs rotated: {'yes: ' + ', '.join(rotated) if rotated else 'no'}")
        st = emu.call("GET", "/state")
        print(f"# emulator holds {len(st['deployments'])} deployments, {len(st['commands'])} "
              f"commands, {sum(len(v) for v in st['history'].values())} history events")
        print(f"# agent still running: {agent.poll() is None}; failed deployments: {len(failed)}")
    finally:
        b.stop_all()
        tmp.cleanup()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
