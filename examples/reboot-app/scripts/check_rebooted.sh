#!/bin/sh
# The host must have booted since install_kernel.sh ran.
set -eu
before=$(cat /var/tmp/codedeploy-reboot-app/installed-in-boot)
now=$(cat /proc/sys/kernel/random/boot_id)
if [ "$before" = "$now" ]; then
    echo "no reboot happened since the install (boot $now)" >&2
    exit 1
fi
echo "rebooted: $before -> $now"
