#!/usr/bin/env python3
"""Install benchmark (issue: bundles and the install engine).

Bundle: 10,000 files of 1 KiB in 100 directories plus one 200 MiB file (--scale multiplies
both). Compares, in interleaved rounds on the same machine:
  directory bundle: `codedeploy-agent deploy-local -e DownloadBundle,Install`
                    vs `cp -a tree A && cp -a A B` (copy into the archive + copy to destination)
  tgz bundle:       `codedeploy-agent deploy-local -t tgz -e DownloadBundle,Install`
                    vs `tar xzf bundle.tgz -C A && cp -a A B`
and prints each run's wall time and peak RSS, then medians and ratios.

Usage: cargo build --release && python3 benches/install_bench.py [--rounds 5] [--scale 1]
Old trees are moved aside and deleted only after all timed runs (ext4 without a journal is
slow to create files right after a large delete).
"""
import argparse, os, random, shutil, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "codedeploy-agent")


def make_tree(base, scale):
    rnd = random.Random(42)
    files_per_dir = 100
    for d in range(100 * scale):
        sub = os.path.join(base, "site", f"dir{d:03}")
        os.makedirs(sub)
        for f in range(files_per_dir):
            with open(os.path.join(sub, f"file{f:03}.txt"), "wb") as fh:
                fh.write(rnd.randbytes(512).hex().encode())
    with open(os.path.join(base, "site", "big.bin"), "wb") as fh:
        chunk = os.urandom(1 << 20)
        for _ in range(200 * scale):
            fh.write(chunk)
            chunk = chunk[1:] + chunk[:1]


def run(cmd, **kw):
    """Runs cmd under GNU time; returns (seconds, peak RSS KiB of the largest process in it).

    GNU time is a small C program, so the peak it reports is the command's own, not that of a
    forked copy of this Python process. The previous runs' dirty pages are written out first
    (outside the timing), so no run pays for another's writeback."""
    os.sync()
    time.sleep(1)
    fd, out = tempfile.mkstemp()
    os.close(fd)
    start = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", out] + cmd,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
    elapsed = time.perf_counter() - start
    if p.returncode != 0:
        sys.exit(f"failed: {cmd}\n{p.stdout.decode(errors='replace')[-4000:]}"
                 f"{p.stderr.decode(errors='replace')}")
    with open(out) as fh:
        rss = int(fh.read().split()[-1])
    os.remove(out)
    return elapsed, rss


# ext4 without a journal skips inodes freed in the last 60 s (300 s while their inode-table
# block is dirty) and rescans them on every create, so runs right after a large delete are
# several times slower. This file records when the previous benchmark deleted its trees.
DELETED_AT = os.path.join(tempfile.gettempdir(), "cd-install-bench-deleted-at")
QUIET_AFTER_DELETE = int(os.environ.get("BENCH_QUIET_AFTER_DELETE", "330"))


def wait_for_quiet_inodes():
    try:
        age = time.time() - os.path.getmtime(DELETED_AT)
    except OSError:
        return
    if age < QUIET_AFTER_DELETE:
        wait = QUIET_AFTER_DELETE - age
        print(f"the previous run deleted its trees {age:.0f} s ago; waiting {wait:.0f} s "
              "for ext4 to stop skipping those inodes", flush=True)
        time.sleep(wait)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--scale", type=int, default=1)
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args()
    if not os.access(BIN, os.X_OK):
        sys.exit(f"build first: cargo build --release ({BIN} missing)")
    wait_for_quiet_inodes()
    work = tempfile.mkdtemp(prefix="cd-bench-", dir=args.workdir)
    try:
        measure(args, work)
    finally:
        # Also after a failure (a full disk, a failed run): never leave gigabytes behind.
        shutil.rmtree(work, ignore_errors=True)
        with open(DELETED_AT, "w"):
            pass
        os.utime(DELETED_AT)


def measure(args, work):
    trash = os.path.join(work, "trash")
    os.makedirs(trash)
    src = os.path.join(work, "bundle")
    os.makedirs(src)
    print(f"building bundle (scale {args.scale}) in {src} ...", flush=True)
    make_tree(src, args.scale)
    with open(os.path.join(src, "appspec.yml"), "w") as fh:
        fh.write("version: 0.0\nos: linux\nfiles:\n  - source: site\n    destination: DEST\n")
    tgz = os.path.join(work, "bundle.tgz")
    subprocess.run(["tar", "czf", tgz, "-C", src, "."], check=True)
    n = 0

    def fresh():
        nonlocal n
        n += 1
        d = os.path.join(work, f"run{n}")
        os.makedirs(d)
        return d

    results = {k: [] for k in ("ours-dir", "cp-cp", "ours-tgz", "tar-cp")}
    # Each of our runs deploys a bundle whose appspec names its own destination: build one
    # directory bundle and one tgz per round up front (outside the timing).
    for r in range(args.rounds):
        # ours, directory bundle: the bundle is the tree itself, its appspec naming this
        # round's destination (written outside the timing).
        d = fresh()
        b = src
        dest = os.path.join(d, "dest")
        with open(os.path.join(b, "appspec.yml"), "w") as fh:
            fh.write(f"version: 0.0\nos: linux\nfiles:\n  - source: site\n    destination: {dest}\n")
        cfg = os.path.join(d, "agent.yml")
        with open(cfg, "w") as fh:
            fh.write(f"root_dir: {d}/root\nlog_dir: {d}/log\n")
        results["ours-dir"].append(run([BIN, "deploy-local", "-c", cfg, "-l", b, "-e", "DownloadBundle,Install"]))
        # cp -a twice
        d2 = fresh()
        results["cp-cp"].append(run(["sh", "-c", f"cp -a {src} {d2}/A && cp -a {d2}/A {d2}/B"]))
        # ours, tgz bundle: a tgz per round whose appspec names this round's destination
        # (built outside the timing).
        d3 = fresh()
        dest3 = os.path.join(d3, "dest")
        stage = os.path.join(d3, "stage")
        os.makedirs(stage)
        with open(os.path.join(stage, "appspec.yml"), "w") as fh:
            fh.write(f"version: 0.0\nos: linux\nfiles:\n  - source: site\n    destination: {dest3}\n")
        t3 = os.path.join(d3, "b.tgz")
        # The staging tree goes to the trash, not away: deleting it here would slow the
        # next file creations (ours) for minutes (see wait_for_quiet_inodes).
        subprocess.run(f"(cd {src} && tar cf - site) | (cd {stage} && tar xf -) && tar czf {t3} -C {stage} .", shell=True, check=True)
        os.rename(stage, os.path.join(trash, f"stage{r}"))
        cfg3 = os.path.join(d3, "agent.yml")
        with open(cfg3, "w") as fh:
            fh.write(f"root_dir: {d3}/root\nlog_dir: {d3}/log\n")
        results["ours-tgz"].append(run([BIN, "deploy-local", "-c", cfg3, "-t", "tgz", "-l", t3, "-e", "DownloadBundle,Install"]))
        # tar xzf + cp -a
        d4 = fresh()
        results["tar-cp"].append(run(["sh", "-c", f"mkdir {d4}/A && tar xzf {tgz} -C {d4}/A && cp -a {d4}/A {d4}/B"]))
        for dd in (d, d2, d3, d4):
            os.rename(dd, os.path.join(trash, os.path.basename(dd)))
        print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1][0]:.2f}s/{v[-1][1] // 1024}MiB" for k, v in results.items()), flush=True)

    med = {k: statistics.median(t for t, _ in v) for k, v in results.items()}
    rss = {k: max(m for _, m in v) for k, v in results.items()}
    print()
    print(f"{'run':<10} {'median s':>9} {'max peak RSS MiB':>17}")
    for k in results:
        print(f"{k:<10} {med[k]:>9.3f} {rss[k] / 1024:>17.1f}")
    print()
    # The machine drifts between fast and slow spells that last several rounds, so the ratio
    # of each round's pair (run seconds apart) is printed beside the ratio of the medians.
    def paired(a, b):
        return statistics.median(x[0] / y[0] for x, y in zip(results[a], results[b]))
    print(f"directory bundle: ours / (cp -a twice)      = {med['ours-dir'] / med['cp-cp']:.2f} "
          f"(median of per-round ratios {paired('ours-dir', 'cp-cp'):.2f}; target <= 0.9)")
    print(f"tgz bundle:       ours / (tar xzf + cp -a)  = {med['ours-tgz'] / med['tar-cp']:.2f} "
          f"(median of per-round ratios {paired('ours-tgz', 'tar-cp'):.2f}; target <= 0.6)")
    print(f"peak RSS ours: dir {rss['ours-dir'] / 1024:.1f} MiB, tgz {rss['ours-tgz'] / 1024:.1f} MiB (target <= 16)")


if __name__ == "__main__":
    main()
