#!/bin/sh
# Stands in for "apt-get install linux-image-..." : records the boot it ran in, then asks
# the agent for a reboot after this script (any file at the path will do).
set -eu
state=/var/tmp/codedeploy-reboot-app
mkdir -p "$state"
cat /proc/sys/kernel/random/boot_id > "$state/installed-in-boot"
echo "installed; asking for a reboot via $CODEDEPLOY_REBOOT_REQUEST"
touch "$CODEDEPLOY_REBOOT_REQUEST"
