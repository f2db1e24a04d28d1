#!/usr/bin/env python3
"""Peak RSS of an install by file count (issue 15, item 4: flat from 10,000 to 1,000,000 files).

For each count N: a tgz of N files of 16 bytes in directories of 100 (written straight into
the tgz, so no source tree is made), then
  first:  `deploy-local -t tgz -e DownloadBundle,Install` into a fresh root and destination;
  again:  the same bundle deployed again to the same group, so the install also reads the
          first one's cleanup journal and removes its N files before installing N again.
Each run goes through GNU time (`%M`, the process's own peak RSS).
--permissions adds a `permissions` entry (mode 0644, pattern "**") over the destination, so
every file also gets a permission step.
--bin names our build (default target/release/codedeploy-agent); --alt-bin runs another build
the same way in the same round; with --rounds N the two builds
take turns going first. --workdir /dev/shm compares the work itself, without the disk (on
ext4 without a journal, whichever build runs right after a large delete is slowed).

Usage: cargo build --release && python3 benches/plan_memory.py [--counts 10000,100000]
       [--permissions] [--alt-bin target/agent.before] [--rounds 1] [--workdir DIR]
Trees are moved aside during the runs and deleted at the end (ext4 without a journal creates
files slowly for a while after a large delete).
"""
import argparse, os, shutil, statistics, sys, tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402  (AGENT_BIN)
from install_bench import run  # noqa: E402
from single_pass_bench import write_tgz  # noqa: E402


def appspec(dest, permissions):
    text = f"version: 0.0\nos: linux\nfiles:\n  - source: site\n    destination: {dest}\n"
    if permissions:
        text += f"permissions:\n  - object: {dest}\n    pattern: \"**\"\n    mode: 644\n" \
                "    type:\n      - file\n"
    return text


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--counts", default="10000,100000,300000,1000000")
    ap.add_argument("--permissions", action="store_true")
    ap.add_argument("--bin", default=benchlib.AGENT_BIN, help="ours (default: the release build)")
    ap.add_argument("--alt-bin", default=None)
    ap.add_argument("--no-again", action="store_true", help="skip the second deployment")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="cd-plan-mem-", dir=args.workdir)
    trash = os.path.join(work, "trash")
    os.makedirs(trash)
    bins = [("ours", args.bin)] + ([("alt", args.alt_bin)] if args.alt_bin else [])
    rows = []
    try:
        for r, n in [(r, int(c)) for c in args.counts.split(",") for r in range(args.rounds)]:
            for label, binary in (bins if r % 2 == 0 else bins[::-1]):
                d = os.path.join(work, f"{label}-{n}")
                os.makedirs(d)
                dest = os.path.join(d, "dest")
                tgz = os.path.join(d, "b.tgz")
                write_tgz(tgz, n, 16, 0, appspec(dest, args.permissions))
                cfg = os.path.join(d, "agent.yml")
                with open(cfg, "w") as fh:
                    fh.write(f"root_dir: {d}/root\nlog_dir: {d}/log\n")
                cmd = [binary, "deploy-local", "-c", cfg, "-t", "tgz", "-l", tgz,
                       "-g", "g", "-e", "DownloadBundle,Install"]
                first = run(cmd)
                again = None if args.no_again else run(cmd)
                rows.append((label, n, first, again))
                fmt = lambda r: "-" if r is None else f"{r[1] / 1024:.1f} MiB {r[0]:.1f} s"
                print(f"{label:5} {n:>9,} files  first {fmt(first)}  again {fmt(again)}",
                      flush=True)
                os.rename(d, os.path.join(trash, f"{label}-{n}-{r}"))
    finally:
        print("deleting the trees ...", flush=True)
        shutil.rmtree(work, ignore_errors=True)
    print("\n| build | files | first: max peak RSS | first: median s | again: max peak RSS "
          "| again: median s |")
    print("|---|---|---|---|---|---|")
    for label, n in dict.fromkeys((label, n) for label, n, _, _ in rows):
        runs = [(f, a) for lb, m, f, a in rows if (lb, m) == (label, n)]
        cols = []
        for k in (0, 1):
            got = [x[k] for x in runs if x[k] is not None]
            cols += ([f"{max(g[1] for g in got) / 1024:.1f} MiB",
                      f"{statistics.median(g[0] for g in got):.2f}"] if got else ["-", "-"])
        print(f"| {label} | {n:,} | " + " | ".join(cols) + " |")


if __name__ == "__main__":
    main()
