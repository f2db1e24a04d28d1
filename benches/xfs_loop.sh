#!/bin/sh
# A reflink-capable XFS file system on a loop device, for benchmarks that should see what
# Amazon Linux 2023's root file system does (XFS with reflink=1: copy_file_range clones).
# Needs root and xfsprogs (apt-get install xfsprogs).
#   benches/xfs_loop.sh up DIR [SIZE]   make a SIZE (default 6G) image under /tmp, mount it at DIR
#   benches/xfs_loop.sh down DIR        unmount DIR and delete its image
# Then, for example: python3 benches/single_pass_bench.py --only dir --workdir DIR
set -eu
cmd=${1:?usage: xfs_loop.sh up|down DIR [SIZE]}
dir=${2:?usage: xfs_loop.sh up|down DIR [SIZE]}
img="/tmp/xfs-loop-$(echo "$dir" | tr / _).img"
case "$cmd" in
up)
    command -v mkfs.xfs >/dev/null || { echo "mkfs.xfs missing: apt-get install xfsprogs" >&2; exit 1; }
    truncate -s "${3:-6G}" "$img"
    mkfs.xfs -q -m reflink=1 "$img"
    mkdir -p "$dir"
    mount -o loop "$img" "$dir"
    echo "XFS (reflink=1) at $dir, image $img"
    ;;
down)
    umount "$dir"
    rm -f "$img"
    rmdir "$dir" 2>/dev/null || true
    ;;
*)
    echo "usage: xfs_loop.sh up|down DIR [SIZE]" >&2
    exit 2
    ;;
esac
