#!/usr/bin/env python3
"""Install speed against single-pass tools (issue 15, item 4).

Bundle: --files small files in directories of 100 (default 10,000 of 1 KiB) plus one
--big-mib MiB file (default 200). In interleaved rounds, each run into a fresh directory:
  tgz bundle:       `codedeploy-agent deploy-local -t tgz -e DownloadBundle,Install`
                    vs one `tar xzf bundle.tgz -C dest`                   (target <= 0.8x)
  directory bundle: `codedeploy-agent deploy-local -e DownloadBundle,Install`
                    vs one `cp -a tree dest`                                (target <= 1.0x)
Each run's wall time and peak RSS (GNU time) are printed, then medians, ratios and the
median of the per-round ratios. Peak RSS target: <= 16 MiB, flat from 10,000 to 1,000,000
files (run with --only tgz --files 1000000 --file-bytes 16 --big-mib 0 --rounds 1; the tgz
bundle is written straight from Python, so only the unpacked trees take disk: check
`df -h` first).

Usage: cargo build --release && python3 benches/single_pass_bench.py [--rounds 5]
Old trees are moved aside and deleted only after all timed runs (see install_bench.py).
Peak RSS is GNU time's %M: the largest process of the run. --with-links adds ours with
`install_by_hard_link: true` (ADR 0011) to the same rounds; --sync flushes dirty pages before
each timed run; --alt-bin BIN runs another build of the agent (say, the previous commit's) in
the same rounds, as the `-alt` rows.
"""
import argparse, io, os, random, shutil, statistics, subprocess, sys, tarfile, tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402  (AGENT_BIN, BENCH_PROFILE)
from install_bench import run, wait_for_quiet_inodes, DELETED_AT  # noqa: E402

BIN = benchlib.AGENT_BIN


def make_tree(base, files, file_bytes, big_mib):
    rnd = random.Random(42)
    site = os.path.join(base, "site")
    for i in range(files):
        if i % 100 == 0:
            sub = os.path.join(site, f"dir{i // 100:05}")
            os.makedirs(sub)
        with open(os.path.join(sub, f"f{i % 100:03}.txt"), "wb") as fh:
            fh.write(rnd.randbytes(file_bytes // 2 + 1).hex().encode()[:file_bytes])
    os.makedirs(site, exist_ok=True)
    if big_mib:
        with open(os.path.join(site, "big.bin"), "wb") as fh:
            chunk = os.urandom(1 << 20)
            for _ in range(big_mib):
                fh.write(chunk)
                chunk = chunk[1:] + chunk[:1]


def write_tgz(path, files, file_bytes, big_mib, spec):
    """The same tree as make_tree, written straight into a tgz (no tree on disk, so a bundle
    of 1,000,000 files costs its compressed size, not 4 GiB of blocks)."""
    rnd = random.Random(42)
    with tarfile.open(path, "w:gz", compresslevel=6) as tf:
        def add(name, data):
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode, ti.mtime = len(data), 0o644, 1_700_000_000
            tf.addfile(ti, io.BytesIO(data))

        def add_dir(name):
            ti = tarfile.TarInfo(name)
            ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, 1_700_000_000
            tf.addfile(ti)

        add("./appspec.yml", spec.encode())
        add_dir("./site")
        for i in range(files):
            if i % 100 == 0:
                add_dir(f"./site/dir{i // 100:05}")
            add(f"./site/dir{i // 100:05}/f{i % 100:03}.txt",
                rnd.randbytes(file_bytes // 2 + 1).hex().encode()[:file_bytes])
        if big_mib:
            big = io.BytesIO()
            chunk = os.urandom(1 << 20)
            for _ in range(big_mib):
                big.write(chunk)
                chunk = chunk[1:] + chunk[:1]
            add("./site/big.bin", big.getvalue())


def appspec(dest):
    return f"version: 0.0\nos: linux\nfiles:\n  - source: site\n    destination: {dest}\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--file-bytes", type=int, default=1024)
    ap.add_argument("--big-mib", type=int, default=200)
    ap.add_argument("--only", choices=["tgz", "dir"], default=None)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--delete-each-round", action="store_true")
    # Flush every earlier run's dirty pages before each timed run, so no run pays for the
    # write-back of another's bytes (without it, later rounds of the tool that writes more are
    # slowed by the kernel's dirty-page throttling; both ways are worth reporting).
    ap.add_argument("--sync", action="store_true")
    # Also run ours with `install_by_hard_link: true` (ADR 0011), in the same rounds.
    ap.add_argument("--with-links", action="store_true")
    # Another build of the agent in the same rounds (`-alt` rows), to compare two commits.
    ap.add_argument("--alt-bin", default=None)
    args = ap.parse_args()
    if not os.access(BIN, os.X_OK):
        sys.exit(f"build first: cargo build --release ({BIN} missing)")
    wait_for_quiet_inodes()
    work = tempfile.mkdtemp(prefix="cd-single-", dir=args.workdir and os.path.abspath(args.workdir))
    try:
        measure(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        with open(DELETED_AT, "w"):
            pass
        os.utime(DELETED_AT)


def measure(args, work):
    trash = os.path.join(work, "trash")
    os.makedirs(trash)
    n = 0

    def fresh():
        nonlocal n
        n += 1
        d = os.path.join(work, f"run{n}")
        os.makedirs(d)
        return d

    def config(d, links=False):
        cfg = os.path.join(d, "agent.yml")
        with open(cfg, "w") as fh:
            fh.write(f"root_dir: {d}/root\nlog_dir: {d}/log\n")
            if links:
                fh.write("install_by_hard_link: true\n")
        return cfg

    def timed(cmd):
        if args.sync:
            os.sync()
        return run(cmd)

    def ours_tgz(links=False, bin_=BIN):
        """Ours on a tgz whose appspec names this run's destination (built outside the
        timing); returns the run's directory, the tgz and the result."""
        d = fresh()
        t = os.path.join(d, "b.tgz")
        write_tgz(t, args.files, args.file_bytes, args.big_mib, appspec(os.path.join(d, "dest")))
        return d, t, timed([bin_, "deploy-local", "-c", config(d, links), "-t", "tgz", "-l", t,
                            "-e", "DownloadBundle,Install"])

    def ours_dir(links=False, bin_=BIN):
        d = fresh()
        with open(os.path.join(src, "appspec.yml"), "w") as fh:
            fh.write(appspec(os.path.join(d, "dest")))
        return d, timed([bin_, "deploy-local", "-c", config(d, links), "-l", src,
                         "-e", "DownloadBundle,Install"])

    kinds = {"tgz": ("ours-tgz", "tar-xzf"), "dir": ("ours-dir", "cp-a")}
    if args.only:
        kinds = {args.only: kinds[args.only]}
    results = {k: [] for pair in kinds.values() for k in pair}
    if args.with_links:
        results.update({f"{ours}-link": [] for ours, _ in kinds.values()})
    variants = [(False, "")] + ([(True, "-link")] if args.with_links else [])
    if args.alt_bin:
        results.update({f"{ours}{v}-alt": [] for ours, _ in kinds.values() for _, v in variants})
    src = os.path.join(work, "bundle")
    if "dir" in kinds:
        print(f"building directory bundle: {args.files} files of {args.file_bytes} bytes + "
              f"{args.big_mib} MiB in {src} ...", flush=True)
        make_tree(src, args.files, args.file_bytes, args.big_mib)
    for r in range(args.rounds):
        done = []
        if "tgz" in kinds:
            # The single tar extracts the same file as ours.
            d, t, res = ours_tgz()
            results["ours-tgz"].append(res)
            d2 = fresh()
            results["tar-xzf"].append(timed(["tar", "xzf", t, "-C", d2]))
            done += [d, d2]
            if args.with_links:
                d5, _, res = ours_tgz(links=True)
                results["ours-tgz-link"].append(res)
                done.append(d5)
            for links, v in variants if args.alt_bin else []:
                da, _, res = ours_tgz(links=links, bin_=args.alt_bin)
                results[f"ours-tgz{v}-alt"].append(res)
                done.append(da)
        if "dir" in kinds:
            d3, res = ours_dir()
            results["ours-dir"].append(res)
            d4 = fresh()
            results["cp-a"].append(timed(["cp", "-a", src, os.path.join(d4, "dest")]))
            done += [d3, d4]
            if args.with_links:
                d6, res = ours_dir(links=True)
                results["ours-dir-link"].append(res)
                done.append(d6)
            for links, v in variants if args.alt_bin else []:
                da, res = ours_dir(links=links, bin_=args.alt_bin)
                results[f"ours-dir{v}-alt"].append(res)
                done.append(da)
        for dd in done:
            os.rename(dd, os.path.join(trash, os.path.basename(dd)))
        print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1][0]:.2f}s/{v[-1][1] / 1024:.1f}MiB"
                                             for k, v in results.items()), flush=True)
        if args.delete_each_round:
            # Big runs: the disk cannot hold every round's trees; the next round then pays
            # for ext4's handling of just-freed inodes (see install_bench.py).
            shutil.rmtree(trash)
            os.makedirs(trash)

    med = {k: statistics.median(t for t, _ in v) for k, v in results.items()}
    rss = {k: max(m for _, m in v) for k, v in results.items()}
    print()
    print(f"{'run':<18} {'median s':>9} {'max peak RSS MiB':>17}")
    for k in results:
        print(f"{k:<18} {med[k]:>9.3f} {rss[k] / 1024:>17.1f}")
    print()

    def paired(a, b):
        return statistics.median(x[0] / y[0] for x, y in zip(results[a], results[b]))
    for kind, (ours, tool) in kinds.items():
        target = {"tgz": 0.8, "dir": 1.0}[kind]
        mine = [f"{ours}{v}" for _, v in variants]
        for o in mine + ([f"{m}-alt" for m in mine] if args.alt_bin else []):
            print(f"{kind} bundle: {o} / {tool} = {med[o] / med[tool]:.2f} (median of per-round "
                  f"ratios {paired(o, tool):.2f}; target <= {target}); peak RSS "
                  f"{rss[o] / 1024:.1f} MiB (target <= 16)")


if __name__ == "__main__":
    main()
