#!/bin/bash
# First deploys (DownloadBundle, Install) of one bundle by two builds, A and B, in interleaved
# rounds with alternating order, each into a fresh root, nothing deleted until the end.
# Usage: benches/space_pairs.sh A_BINARY B_BINARY WORKDIR [ROUNDS]
# WORKDIR/bundle must hold the bench tree (see benches/space_overhead.py make_tree) with an
# appspec whose destination is WORKDIR/dest. Prints "round build kind seconds" lines.
set -eu
a=$1 b=$2 work=$3 rounds=${4:-6}
cd "$work"
[ -f bundle.tgz ] || tar -czf bundle.tgz -C bundle .
mkdir -p trash
n=0
for round in $(seq 1 "$rounds"); do
  if [ $((round % 2)) -eq 0 ]; then order="A B"; else order="B A"; fi
  for label in $order; do
    bin=$a; [ "$label" = B ] && bin=$b
    for kind in directory tgz; do
      n=$((n+1)); mkdir -p run
      printf 'root_dir: %s/run/root\nlog_dir: %s/run/log\n' "$work" "$work" > run/a.yml
      loc=$work/bundle; [ "$kind" = tgz ] && loc=$work/bundle.tgz
      sync; sleep 1
      s=$(date +%s.%N)
      "$bin" deploy-local -c run/a.yml -g g -t "$kind" -e DownloadBundle,Install -l "$loc" > /dev/null
      e=$(date +%s.%N)
      echo "$round $label $kind $(echo "$e - $s" | bc)"
      mv run "trash/run$n"; mv dest "trash/dest$n"
    done
  done
done
rm -rf trash
