"""Benchmark of parallel ranged S3 downloads (issue 15, item 5): S3's per-connection ceiling
made real on this machine.

Set-up: a network namespace made here (`ip netns`), joined to the host by a veth pair
(10.203.7.1 host side, 10.203.7.2 inside). moto (SigV4 on, as the tests run it) serves from
inside the namespace through benches/paced_moto.py, which paces every accepted TCP flow at
BENCH_RATE_MIB (80) MiB/s with SO_MAX_PACING_RATE — this kernel has no fq qdisc for
`tc qdisc ... fq maxrate`, and TCP's own pacing (Linux >= 4.13) applies the same per-flow cap
without it; see that file for why and for its ranged-GET fix (moto reads the whole object per
ranged GET, real S3 does not). The bundle is a tar of BENCH_GIB (2) GiB of /dev/urandom bytes
(incompressible), uploaded by multipart as a real large bundle would be (ETag `-N`).

Variants, each a child process (examples/s3_ranged_bench.rs) measuring itself: `single` (one
GET, the agent before issue 15), `ranged-N` for N in 1, 2, 4, 8, 16 connections (8 MiB parts),
and `local` (the unpacker alone on the same bundle from a local file). Each reports wall time,
peak RSS (VmHWM) and bytes written to storage (/proc/self/io write_bytes). BENCH_ROUNDS (3)
rounds, order rotated each round; medians printed as a Markdown table with the load averages.

Run as root: `cargo build --release --example s3_ranged_bench && sudo python3 benches/ranged_s3.py`
(BENCH_PROFILE=release; BENCH_GIB, BENCH_ROUNDS, BENCH_RATE_MIB, BENCH_CONNS="1 2 4 8 16";
BENCH_ENV_VARIANTS, BENCH_ALT_BIN and BENCH_WRAP are described where they are read).
Everything it starts is stopped, the namespace removed and target/bench-ranged deleted at the
end, also on SIGINT/SIGTERM.
"""

import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402

REPO = benchlib.REPO
PROFILE = os.environ.get("BENCH_PROFILE", "release")
BIN = os.path.join(REPO, f"target/{PROFILE}/examples/s3_ranged_bench")
WORK = os.path.join(REPO, "target/bench-ranged")
GIB = float(os.environ.get("BENCH_GIB", "2"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
RATE = int(float(os.environ.get("BENCH_RATE_MIB", "80")) * 1024 * 1024)
CONNS = [int(c) for c in os.environ.get("BENCH_CONNS", "1 2 4 8 16").split()]
# Extra variants, the defaults (8 connections) with one environment variable set for the child,
# e.g. BENCH_ENV_VARIANTS="MALLOC_ARENA_MAX=2 MALLOC_ARENA_MAX=1": each adds `ranged-8 NAME=V`.
ENV_VARIANTS = os.environ.get("BENCH_ENV_VARIANTS", "").split()
# A command put before each child, e.g. BENCH_WRAP="heaptrack -o target/heap-%n" to see what
# holds the memory at the peak; %n becomes the child's number (1, 2, ... in the order run) and
# the wrapper's own output lines are skipped.
WRAP = os.environ.get("BENCH_WRAP", "").split()
# Another build of examples/s3_ranged_bench to compare against, interleaved in the same rounds:
# adds the variant `ranged-8 alt` (the defaults, run by that binary).
ALT_BIN = os.environ.get("BENCH_ALT_BIN")
RUNS = [0]
PART = 8 << 20
NS = f"cdr{os.getpid()}"
VETH_HOST, VETH_NS = f"cdr{os.getpid()}h", f"cdr{os.getpid()}n"
HOST_IP, NS_IP = "10.203.7.1", "10.203.7.2"
PORT = 5000
KEY = "big.tar"


def sh(*args):
    subprocess.run(args, check=True)


def netns_up():
    sh("ip", "netns", "add", NS)
    sh("ip", "link", "add", VETH_HOST, "type", "veth", "peer", "name", VETH_NS)
    sh("ip", "link", "set", VETH_NS, "netns", NS)
    sh("ip", "addr", "add", f"{HOST_IP}/30", "dev", VETH_HOST)
    sh("ip", "link", "set", VETH_HOST, "up")
    sh("ip", "netns", "exec", NS, "ip", "addr", "add", f"{NS_IP}/30", "dev", VETH_NS)
    sh("ip", "netns", "exec", NS, "ip", "link", "set", VETH_NS, "up")
    sh("ip", "netns", "exec", NS, "ip", "link", "set", "lo", "up")


def netns_down():
    subprocess.run(["ip", "link", "del", VETH_HOST], stderr=subprocess.DEVNULL)
    subprocess.run(["ip", "netns", "del", NS], stderr=subprocess.DEVNULL)


def start_moto():
    """moto inside the namespace, SigV4 on: the first three actions make a user and its key."""
    import boto3
    from botocore.config import Config

    env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT="3", PACE_BYTES_PER_SEC=str(RATE),
               TMPDIR=WORK)
    env.pop("AWS_ACCESS_KEY_ID", None)
    env.pop("AWS_SECRET_ACCESS_KEY", None)
    proc = benchlib.spawn(
        ["ip", "netns", "exec", NS, sys.executable,
         os.path.join(REPO, "benches/paced_moto.py"), "-H", NS_IP, "-p", str(PORT)],
        env=env, stdout=open(os.path.join(WORK, "moto.log"), "w"), stderr=subprocess.STDOUT)
    endpoint = f"http://{NS_IP}:{PORT}"
    deadline = time.time() + 30
    import socket
    while True:
        if proc.poll() is not None:
            raise RuntimeError("moto exited early; see target/bench-ranged/moto.log")
        try:
            socket.create_connection((NS_IP, PORT), timeout=0.5).close()
            break
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.2)
    cfg = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3})
    boot = dict(endpoint_url=endpoint, region_name=benchlib.REGION, config=cfg,
                aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")
    iam = boto3.client("iam", **boot)
    iam.create_user(UserName="admin")
    iam.put_user_policy(UserName="admin", PolicyName="all", PolicyDocument=json.dumps(
        {"Version": "2012-10-17",
         "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    key = iam.create_access_key(UserName="admin")["AccessKey"]
    s3 = boto3.client("s3", **dict(boot, aws_access_key_id=key["AccessKeyId"],
                                   aws_secret_access_key=key["SecretAccessKey"]))
    s3.create_bucket(Bucket=benchlib.BUCKET)
    s3.put_bucket_versioning(Bucket=benchlib.BUCKET,
                             VersioningConfiguration={"Status": "Enabled"})
    return endpoint, key["AccessKeyId"], key["SecretAccessKey"], s3


def make_bundle(path):
    """A tar of 64 MiB members of /dev/urandom bytes, GIB in all."""
    members = max(1, int(GIB * 16))
    with open("/dev/urandom", "rb") as rnd, tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as t:
        spec = b"version: 0.0\nos: linux\n"
        info = tarfile.TarInfo("app/appspec.yml")
        info.size = len(spec)
        import io
        t.addfile(info, io.BytesIO(spec))
        for i in range(members):
            info = tarfile.TarInfo(f"app/data/part-{i:03}.bin")
            info.size = 64 << 20
            t.addfile(info, rnd)


def run(args, extra_env=None, binary=BIN):
    env = dict(os.environ, **(extra_env or {}))
    RUNS[0] += 1
    wrap = [w.replace("%n", str(RUNS[0])) for w in WRAP]
    out = subprocess.run(wrap + [binary] + args, check=True, capture_output=True, text=True,
                         env=env)
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    return json.loads(lines[-1])


def main():
    if os.geteuid() != 0:
        sys.exit("run as root (it makes a network namespace)")
    benchlib.install_signal_handlers()
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    try:
        netns_up()
        endpoint, key_id, secret, s3 = start_moto()
        bundle = os.path.join(WORK, "bundle.tar")
        t = time.time()
        make_bundle(bundle)
        size = os.path.getsize(bundle)
        from boto3.s3.transfer import TransferConfig
        s3.upload_file(bundle, benchlib.BUCKET, KEY, Config=TransferConfig(
            multipart_chunksize=64 << 20, max_concurrency=4))
        etag = s3.head_object(Bucket=benchlib.BUCKET, Key=KEY)["ETag"]
        print(f"bundle: {size} bytes, ETag {etag}, made and uploaded in {time.time() - t:.1f} s",
              flush=True)
        variants = (["single"] + [f"ranged-{n}" for n in CONNS]
                    + [f"ranged-8 {e}" for e in ENV_VARIANTS]
                    + (["ranged-8 alt"] if ALT_BIN else []) + ["local"])
        results = {v: [] for v in variants}
        loads = []
        for r in range(ROUNDS):
            order = variants[r % len(variants):] + variants[:r % len(variants)]
            loads.append(os.getloadavg())
            for v in order:
                dest = os.path.join(WORK, f"dest-{v.replace(' ', '-')}")
                alt = v == "ranged-8 alt"
                extra = (dict([v.split(" ", 1)[1].split("=", 1)])
                         if " " in v and not alt else None)
                if v == "local":
                    res = run(["unpack", bundle, "tar", dest])
                else:
                    conns = "single" if v == "single" else v.split(" ")[0].split("-")[1]
                    res = run(["fetch", endpoint, key_id, secret, benchlib.BUCKET, KEY, "tar",
                               dest, conns, str(PART)], extra, ALT_BIN if alt else BIN)
                shutil.rmtree(dest, ignore_errors=True)
                results[v].append(res)
                print(f"round {r + 1} {v}: {res['wall']:.2f} s, {res['hwm_kib'] / 1024:.1f} MiB, "
                      f"{res['write_bytes'] / 2**30:.2f} GiB written", flush=True)
        loads.append(os.getloadavg())
        print()
        print(f"| variant | median wall | MiB/s | peak RSS (max) | written | rounds (s) |")
        print("|---|---|---|---|---|---|")
        med = {}
        for v in variants:
            walls = [x["wall"] for x in results[v]]
            med[v] = statistics.median(walls)
            rss = max(x["hwm_kib"] for x in results[v]) / 1024
            written = statistics.median(x["write_bytes"] for x in results[v]) / 2**30
            print(f"| {v} | {med[v]:.2f} s | {size / 2**20 / med[v]:.0f} | {rss:.1f} MiB | "
                  f"{written:.2f} GiB | {' / '.join(f'{w:.2f}' for w in walls)} |")
        if "ranged-8" in med:
            goal = max(med["single"] * 0.25, med["local"] * 1.10)
            print(f"\ngoal at 8 connections: <= {goal:.2f} s (max of 0.25 x single "
                  f"{med['single'] * 0.25:.2f} s, 1.1 x local {med['local'] * 1.1:.2f} s); "
                  f"measured {med['ranged-8']:.2f} s")
        print("load averages (1/5/15 min) at each round's start and the end: " +
              "; ".join("/".join(f"{x:.2f}" for x in la) for la in loads))
    finally:
        benchlib.stop_all()
        netns_down()
        shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    main()
