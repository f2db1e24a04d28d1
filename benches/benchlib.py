"""Shared pieces of the daemon benchmarks (soak.py, fleet.py): moto with SigV4 on, the
emulator as a `serve` subprocess, real `codedeploy-agent run` processes, bundles, /proc
sampling.

Everything started here runs in its own process group and is registered in STARTED; the
benchmarks call stop_all() from a finally block and from SIGTERM/SIGINT handlers, so no
process outlives a run.
"""

import io
import json
import os
import signal
import socket
import subprocess
import sys
import tarfile
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# BENCH_PROFILE=debug measures what does not depend on the optimiser (retry spacing, rollout
# correctness) without the long fat-LTO release build; memory and CPU figures need release.
_PROFILE = os.environ.get("BENCH_PROFILE", "release")
AGENT_BIN = os.path.join(REPO, f"target/{_PROFILE}/codedeploy-agent")
EMULATOR_BIN = os.path.join(REPO, f"target/{_PROFILE}/codedeploy-emulator")
REGION = "us-east-1"
BUCKET = "bundles"
STARTED = []  # subprocess.Popen objects, each the leader of its own process group


def stop_all():
    """SIGTERM every process group started here, then SIGKILL what is left; reaps them."""
    for p in STARTED:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.time() + 15
    for p in STARTED:
        try:
            p.wait(timeout=max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            pass
    for p in STARTED:
        # The group may hold hook children even after its leader is gone.
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
    STARTED.clear()


def install_signal_handlers():
    def on_signal(signum, _frame):
        stop_all()
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)


def spawn(args, **kw):
    p = subprocess.Popen(args, process_group=0, stdin=subprocess.DEVNULL, **kw)
    STARTED.append(p)
    return p


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, within=30):
    deadline = time.time() + within
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited early with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"port {port} not listening after {within}s")


class Moto:
    """moto server on loopback; only the first three actions go unauthenticated (they create
    an admin user and its key), everything after that is SigV4-checked, as in the tests."""

    def __init__(self, workdir):
        import boto3
        from botocore.config import Config

        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT="3")
        env.pop("AWS_ACCESS_KEY_ID", None)
        env.pop("AWS_SECRET_ACCESS_KEY", None)
        self.proc = spawn(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            env=env,
            stdout=open(os.path.join(workdir, "moto.log"), "w"),
            stderr=subprocess.STDOUT,
        )
        wait_port(self.port, self.proc)
        cfg = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3})
        boot = dict(endpoint_url=self.endpoint, region_name=REGION, config=cfg,
                    aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")
        iam = boto3.client("iam", **boot)
        iam.create_user(UserName="admin")
        iam.put_user_policy(UserName="admin", PolicyName="all", PolicyDocument=json.dumps(
            {"Version": "2012-10-17",
             "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        key = iam.create_access_key(UserName="admin")["AccessKey"]
        self.signed = dict(boot, aws_access_key_id=key["AccessKeyId"],
                           aws_secret_access_key=key["SecretAccessKey"])
        self.iam = boto3.client("iam", **self.signed)
        self.s3 = boto3.client("s3", **self.signed)
        self.s3.create_bucket(Bucket=BUCKET)
        self.s3.put_bucket_versioning(Bucket=BUCKET,
                                      VersioningConfiguration={"Status": "Enabled"})
        self.iam.create_group(GroupName="agents")
        self.iam.put_group_policy(GroupName="agents", PolicyName="read", PolicyDocument=json.dumps(
            {"Version": "2012-10-17",
             "Statement": [{"Effect": "Allow", "Action": "s3:Get*", "Resource": "*"}]}))

    def agent_user(self, name):
        """An IAM user allowed to read bundles; returns (arn, access key id, secret)."""
        arn = self.iam.create_user(UserName=name)["User"]["Arn"]
        self.iam.add_user_to_group(GroupName="agents", UserName=name)
        k = self.iam.create_access_key(UserName=name)["AccessKey"]
        return arn, k["AccessKeyId"], k["SecretAccessKey"]

    def upload(self, key, body):
        out = self.s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        return out["VersionId"], out["ETag"]


class Emulator:
    """`codedeploy-emulator serve` as a subprocess, driven over its admin API."""

    def __init__(self, workdir, poll_idle_secs=45, keep_finished=100, threads=2):
        self.proc = spawn(
            [EMULATOR_BIN, "serve", "--poll-idle-secs", str(poll_idle_secs),
             "--keep-finished", str(keep_finished), "--threads", str(threads),
             "--pki-dir", os.path.join(workdir, "emulator-pki")],
            stdout=subprocess.PIPE,
            stderr=open(os.path.join(workdir, "emulator.err"), "w"),
            text=True,
        )
        info = {}
        while len(info) < 3:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("emulator exited before printing its endpoint")
            k, _, v = line.strip().partition(": ")
            info[k] = v
        self.endpoint, self.ca_cert, self.admin = info["endpoint"], info["ca_cert"], info["admin_url"]

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.admin + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            return json.loads(r.read() or b"null")

    def register(self, host_id, access_key, secret, group="default"):
        self.call("POST", "/hosts", {"host_id": host_id, "access_key": access_key,
                                     "secret_key": secret, "group": group})

    def deploy(self, key, version, etag, config="OneAtATime", group="default"):
        req = {"group": group, "config": config,
               "revision": {"type": "S3", "bucket": BUCKET, "key": key, "bundle_type": "tgz",
                            "version": version, "etag": etag}}
        return self.call("POST", "/deployments", req)["deployment_id"]

    def deployment(self, dep_id):
        return self.call("GET", f"/deployments/{dep_id}")

    def wait_done(self, dep_id, within, poll=0.2):
        deadline = time.time() + within
        while True:
            d = self.deployment(dep_id)
            if d["status"] != "InProgress" or time.time() > deadline:
                return d
            time.sleep(poll)


def bundle(dest, files, hook_lines, tag):
    """A tgz revision: `files` small files under app/ in directories of 100, an appspec that
    installs them to `dest`, and hooks that print `hook_lines` lines
    each to stdout and stderr."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=1) as t:
        def add(name, data, mode=0o644):
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode, ti.mtime = len(data), mode, 0
            t.addfile(ti, io.BytesIO(data))
        for i in range(files):
            add(f"app/d{i // 100:03}/f{i:05}.txt", f"{tag} file {i}\n".encode() * 8)
        hook = (f"#!/bin/sh\ni=0\nwhile [ $i -lt {hook_lines} ]; do\n"
                f"  echo \"{tag} $LIFECYCLE_EVENT line $i of the hook's output\"\n"
                f"  i=$((i+1))\ndone\necho \"{tag} $LIFECYCLE_EVENT done\" >&2\n").encode()
        add("scripts/hook.sh", hook, 0o755)
        events = ["BeforeInstall", "AfterInstall", "ApplicationStart", "ValidateService"]
        spec = f"version: 0.0\nos: linux\nfiles:\n  - source: app\n    destination: {dest}\n"
        spec += "file_exists_behavior: OVERWRITE\nhooks:\n"
        for e in events:
            spec += f"  {e}:\n    - location: scripts/hook.sh\n      timeout: 60\n"
        add("appspec.yml", spec.encode())
    return buf.getvalue()


def write_agent(workdir, endpoint, ca_cert, moto_endpoint, host_arn, key, secret, extra=""):
    """Writes an on-premises identity and agent.yml under `workdir`; returns the config path."""
    os.makedirs(workdir, exist_ok=True)
    onprem = os.path.join(workdir, "onprem.yml")
    with open(onprem, "w") as f:
        f.write(f"region: {REGION}\niam_user_arn: {host_arn}\n"
                f"aws_access_key_id: {key}\naws_secret_access_key: {secret}\n")
    cfg = os.path.join(workdir, "agent.yml")
    with open(cfg, "w") as f:
        f.write(f"root_dir: {workdir}/root\nlog_dir: {workdir}/log\npid_dir: {workdir}/state\n"
                f"on_premises_config_file: {onprem}\ndeploy_control_endpoint: {endpoint}\n"
                f"s3_endpoint_override: {moto_endpoint}\ndeployment_spec_ca_file: {ca_cert}\n"
                f"{extra}")
    return cfg


def start_agent(cfg, out_path, env_extra=None):
    env = {k: v for k, v in os.environ.items()
           if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                        "AWS_REGION", "NOTIFY_SOCKET", "RUST_LOG")}
    env["RUST_LOG"] = "info"
    env.update(env_extra or {})
    with open(out_path, "ab") as out:  # the child keeps its copy; the parent closes its own
        return spawn([AGENT_BIN, "run", "--config-file", cfg], env=env,
                     stdout=out, stderr=subprocess.STDOUT)


# ---- /proc sampling ----

def status_kib(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def rollup_kib(pid):
    """(Pss, Rss) in KiB from /proc/PID/smaps_rollup."""
    pss = rss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1])
                elif line.startswith("Rss:"):
                    rss = int(line.split()[1])
    except OSError:
        pass
    return pss, rss


def count_dir(path):
    try:
        return len(os.listdir(path))
    except OSError:
        return -1


def cpu_ticks(pid):
    """utime + stime of a process, in clock ticks."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return 0


def cpu_ns(pid):
    """CPU time of a process's live threads in nanoseconds (sum of /proc/PID/task/*/schedstat):
    finer than the clock ticks of /proc/PID/stat, which round each process down to 10 ms."""
    total = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0
    for t in tasks:
        try:
            with open(f"/proc/{pid}/task/{t}/schedstat") as f:
                total += int(f.read().split()[0])
        except (OSError, IndexError, ValueError):
            pass
    return total


def du_bytes(path):
    """Allocated bytes under `path` (like du), links not followed."""
    total = 0
    for root, dirs, files in os.walk(path):
        for n in dirs + files:
            try:
                total += os.lstat(os.path.join(root, n)).st_blocks * 512
            except OSError:
                pass
    return total


def machine():
    free = subprocess.run(["free", "-g"], capture_output=True, text=True).stdout.strip()
    return f"nproc {os.cpu_count()}; free -g:\n{free}"
