#!/usr/bin/env python3
"""What the free-space checks cost (issue 11 item 3): two builds of the agent, A and B, deploy
the same bundles in interleaved rounds and the medians are compared.

Bundle: 10,000 files of 1 KiB in 100 directories plus one 200 MiB file (--scale multiplies
both), as a directory bundle and as a tgz. Each round runs, for A and B in a shuffled order,
`deploy-local -e DownloadBundle,Install` of each bundle twice into one fresh root: a first
install, then a redeploy over it (which also measures what the previous revision frees).

Usage: python3 benches/space_overhead.py --a OLD_BINARY --b NEW_BINARY [--rounds 5] [--scale 1]
Trees are moved aside and deleted only after all timed runs (ext4 without a journal is slow to
create files right after a large delete).
"""
import argparse, os, random, shutil, statistics, subprocess, sys, tempfile, time


def make_tree(base, scale):
    rnd = random.Random(42)
    for d in range(100 * scale):
        sub = os.path.join(base, "site", f"dir{d:03}")
        os.makedirs(sub)
        for f in range(100):
            with open(os.path.join(sub, f"file{f:03}.txt"), "wb") as fh:
                fh.write(rnd.randbytes(512).hex().encode())
    with open(os.path.join(base, "site", "big.bin"), "wb") as fh:
        chunk = os.urandom(1 << 20)
        for _ in range(200 * scale):
            fh.write(chunk)


def timed(cmd):
    os.sync()
    start = time.perf_counter()
    p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if p.returncode != 0:
        sys.exit(f"failed: {cmd}\n{p.stderr.decode(errors='replace')}")
    return elapsed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--a", required=True)
    ap.add_argument("--b", required=True)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--scale", type=int, default=1)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="space-bench-")
    trash = os.path.join(work, "trash")
    os.makedirs(trash)
    bundle = os.path.join(work, "bundle")
    dest = os.path.join(work, "dest")
    make_tree(bundle, args.scale)
    with open(os.path.join(bundle, "appspec.yml"), "w") as fh:
        fh.write(f"version: 0.0\nos: linux\nfiles:\n  - source: site\n    destination: {dest}\n")
    tgz = os.path.join(work, "bundle.tgz")
    subprocess.run(["tar", "-czf", tgz, "-C", bundle, "."], check=True)
    results = {}
    n = 0
    for r in range(args.rounds):
        order = [("A", args.a), ("B", args.b)]
        random.shuffle(order)
        for label, binary in order:
            for kind, loc in (("directory", bundle), ("tgz", tgz)):
                n += 1
                run_dir = os.path.join(work, "run")
                os.makedirs(run_dir)
                cfg = os.path.join(run_dir, "agent.yml")
                with open(cfg, "w") as fh:
                    fh.write(f"root_dir: {run_dir}/root\nlog_dir: {run_dir}/log\n")
                base = [binary, "deploy-local", "-c", cfg, "-g", "g", "-t", kind,
                        "-b", "OVERWRITE", "-e", "DownloadBundle,Install", "-l", loc]
                first = timed(base)
                again = timed(base)
                results.setdefault((label, kind, "first"), []).append(first)
                results.setdefault((label, kind, "redeploy"), []).append(again)
                print(f"round {r + 1} {label} {kind}: first {first:.3f} s, redeploy {again:.3f} s",
                      flush=True)
                os.rename(run_dir, os.path.join(trash, f"run{n}"))
                os.rename(dest, os.path.join(trash, f"dest{n}"))
    print()
    for kind in ("directory", "tgz"):
        for phase in ("first", "redeploy"):
            a = statistics.median(results[("A", kind, phase)])
            b = statistics.median(results[("B", kind, phase)])
            ratios = [y / x for x, y in zip(results[("A", kind, phase)],
                                            results[("B", kind, phase)])]
            print(f"{kind:9} {phase:8}: A median {a:.3f} s, B median {b:.3f} s, "
                  f"B/A {b / a:.3f} (median of per-round ratios {statistics.median(ratios):.3f})")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
