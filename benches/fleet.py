#!/usr/bin/env python3
"""Fleet benchmark (issue 12 item 7): N real agents against one emulator and one moto.

Each agent is a `codedeploy-agent run` process (release build) with its own root_dir,
log_dir and on-premises identity (its own IAM user in moto, SigV4 on; the same keys are
registered with the emulator, which needs one access key per host). Phases:

1. idle: after a warm-up, per-agent PSS and RSS (/proc/PID/smaps_rollup) and the agents'
   total CPU over a window, as a share of one core;
2. deployments of one group holding every host, with OneAtATime, HalfAtATime and AllAtOnce:
   rollout time (created -> finished in the emulator), per-host outcome under the
   service's minimum-healthy-hosts rule (emulator/src/schedule.rs), any host that failed;
3. a throttling storm: the emulator throttles every PollHostCommand for --storm-secs while an
   AllAtOnce deployment runs (its first command reaches every agent at once, so the fleet
   polls again in step, as after a real fleet-wide deployment); the emulator counts the
   throttled polls per second, and among them the retries (a host's throttled polls after
   its first; GET /admin/faults/log). Printed: the most retries in one second, as a share of
   all the storm's retries and of the fleet, and whether the deployment still succeeded
   after the storm.

moto is one Python process: with 500 or more agents downloading at once some connections
time out (BENCHMARKS.md), so failed hosts are listed with their names; their reasons are in
agent-NNNN/log/codedeploy-agent.log under the work directory (kept with --keep-workdir).

The bundle has no `files` section (every agent shares one machine and one bundle, so a
common destination would collide); its four hooks print a few lines each.

Usage: cargo build --release --workspace --bins && python3 benches/fleet.py --agents 200
       [--idle-secs 60] [--storm-secs 60] [--configs OneAtATime,HalfAtATime,AllAtOnce]
Prints figures; exits 1 if a deployment did not succeed. Every process it starts is stopped
on exit (finally block and SIGTERM/SIGINT handlers).
"""

import argparse
import io
import os
import shutil
import sys
import tarfile
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as b  # noqa: E402

HZ = os.sysconf("SC_CLK_TCK")


def hooks_only_bundle(lines):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        def add(name, data, mode=0o644):
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode = len(data), mode
            t.addfile(ti, io.BytesIO(data))
        add("scripts/hook.sh", (f"#!/bin/sh\nfor i in $(seq {lines}); do "
                                f"echo \"$LIFECYCLE_EVENT line $i\"; done\n").encode(), 0o755)
        spec = "version: 0.0\nos: linux\nhooks:\n"
        for e in ["BeforeInstall", "AfterInstall", "ApplicationStart", "ValidateService"]:
            spec += f"  {e}:\n    - location: scripts/hook.sh\n      timeout: 60\n"
        add("appspec.yml", spec.encode())
    return buf.getvalue()


def memory(pids):
    rows = [b.rollup_kib(p) for p in pids]
    pss = sorted(r[0] for r in rows)
    rss = sorted(r[1] for r in rows)
    n = len(rows)
    return (f"PSS per agent: mean {sum(pss) / n / 1024:.2f} MiB, median {pss[n // 2] / 1024:.2f}, "
            f"max {pss[-1] / 1024:.2f} (total {sum(pss) / 1024:.0f} MiB); "
            f"RSS per agent: mean {sum(rss) / n / 1024:.2f} MiB, max {rss[-1] / 1024:.2f}"), \
        sum(pss) / n / 1024


def cpu_share(pids, secs):
    """The agents' CPU over `secs` as % of one core: (schedstat, clock ticks of /proc/PID/stat)."""
    n0, t0 = sum(b.cpu_ns(p) for p in pids), sum(b.cpu_ticks(p) for p in pids)
    time.sleep(secs)
    n1, t1 = sum(b.cpu_ns(p) for p in pids), sum(b.cpu_ticks(p) for p in pids)
    return (n1 - n0) / 1e9 / secs * 100, (t1 - t0) / HZ / secs * 100


def outcome(d):
    runs = [r for p in d["phases"] for r in p["runs"]]
    bad = [r["host_id"].rsplit("/", 1)[-1] for r in runs if r["status"] != "Succeeded"]
    secs = ((d["finished_ms"] or 0) - d["created_ms"]) / 1000
    return secs, bad


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--agents", type=int, default=200)
    ap.add_argument("--idle-secs", type=int, default=60, help="warm-up before measuring idle")
    ap.add_argument("--cpu-secs", type=int, default=60, help="CPU measuring window")
    ap.add_argument("--storm-secs", type=int, default=60)
    ap.add_argument("--poll-idle-secs", type=int, default=45)
    ap.add_argument("--configs", default="OneAtATime,HalfAtATime,AllAtOnce")
    ap.add_argument("--hook-lines", type=int, default=5)
    ap.add_argument("--workdir", default=None, help="parent of the temporary work directory")
    ap.add_argument("--keep-workdir", action="store_true", help="leave the agents' files")
    a = ap.parse_args()
    b.install_signal_handlers()
    w = tempfile.mkdtemp(prefix="fleet-", dir=a.workdir)
    failed = []
    try:
        print(f"# fleet: {a.agents} agents; {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}")
        print(f"# {b.machine()}")
        moto = b.Moto(w)
        emu = b.Emulator(w, poll_idle_secs=a.poll_idle_secs, keep_finished=20)
        version, etag = moto.upload("hooks.tgz", hooks_only_bundle(a.hook_lines))
        t = time.time()
        agents = []
        for i in range(a.agents):
            arn, key, secret = moto.agent_user(f"host-{i:04}")
            emu.register(arn, key, secret)
            d = os.path.join(w, f"agent-{i:04}")
            cfg = b.write_agent(d, emu.endpoint, emu.ca_cert, moto.endpoint, arn, key, secret)
            agents.append(cfg)
        print(f"# {a.agents} identities created and registered in {time.time() - t:.0f} s")
        t = time.time()
        procs = []
        for cfg in agents:
            procs.append(b.start_agent(cfg, os.path.join(os.path.dirname(cfg), "agent.out")))
            if len(procs) % 50 == 0:
                time.sleep(0.5)  # let each batch start up and page out its start-up code
        pids = [p.pid for p in procs]
        print(f"# {a.agents} agents started in {time.time() - t:.0f} s; warming up {a.idle_secs} s")
        time.sleep(a.idle_secs)
        alive = sum(p.poll() is None for p in procs)
        line, _ = memory(pids)
        print(f"idle, before any deployment ({alive} alive): {line}")
        ns, ticks = cpu_share(pids, a.cpu_secs)
        print(f"idle CPU of all agents over {a.cpu_secs} s: {ns:.2f} % of one core "
              f"(schedstat; {ticks:.2f} % by /proc/PID/stat ticks)")

        for config in [c for c in a.configs.split(",") if c]:
            dep = emu.deploy("hooks.tgz", version, etag, config=config)
            d = emu.wait_done(dep, within=3600, poll=0.5)
            secs, bad = outcome(d)
            print(f"{config}: {d['status']} in {secs:.1f} s; hosts not succeeded: "
                  f"{len(bad)} {bad[:10]}")
            if d["status"] != "Succeeded" or bad:
                failed.append(config)

        time.sleep(5)
        line, _ = memory(pids)
        print(f"after the deployments: {line}")

        # Storm.
        emu.call("DELETE", "/faults")
        start_s = int(time.time())
        emu.call("POST", "/faults", {"operation": "PollHostCommand", "fault": "Throttle",
                                     "count": 1_000_000_000})
        dep = emu.deploy("hooks.tgz", version, etag, config="AllAtOnce")
        time.sleep(a.storm_secs)
        emu.call("DELETE", "/faults")
        end_s = int(time.time())
        cpu_after = cpu_share(pids, 5)[0]
        d = emu.wait_done(dep, within=3600, poll=0.5)
        secs, bad = outcome(d)
        log = [(e["second"] - start_s, e["count"], e["retries"])
               for e in emu.call("GET", "/faults/log") if start_s <= e["second"] <= end_s]
        total = sum(n for _, n, _ in log)
        retries = sum(r for _, _, r in log)
        print(f"storm {a.storm_secs} s: {total} throttled polls, {total - retries} first "
              f"throttles and {retries} retries, over {len(log)} seconds with any")
        if retries:
            peak_s, _, peak = max(log, key=lambda x: x[2])
            busiest = sorted((r for _, _, r in log), reverse=True)[:5]
            print(f"  busiest second of retries: {peak} = {100 * peak / retries:.1f} % of the "
                  f"storm's retries, {100 * peak / a.agents:.1f} % of the fleet (at +{peak_s} s); "
                  f"top five seconds {busiest}")
        first_peak = max((n - r for _, n, r in log), default=0)
        print(f"  first throttles: at most {first_peak} in one second "
              f"({100 * first_peak / a.agents:.1f} % of the fleet met the storm together)")
        print("  per second (+s:throttled/retries): "
              + " ".join(f"+{s}:{n}/{r}" for s, n, r in log))
        print(f"storm deployment (AllAtOnce): {d['status']} in {secs:.1f} s; hosts not "
              f"succeeded: {len(bad)} {bad[:10]}; agents' CPU just after the storm "
              f"{cpu_after:.1f} % of one core")
        if d["status"] != "Succeeded" or bad:
            failed.append("storm")
        alive = sum(p.poll() is None for p in procs)
        print(f"# agents still running at the end: {alive} of {a.agents}")
    finally:
        b.stop_all()
        if a.keep_workdir:
            print(f"# work directory kept: {w}")
        else:
            shutil.rmtree(w, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
