#!/bin/sh
# Runs after the reboot: the agent resumed the event at this script.
set -eu
echo "running in boot $(cat /proc/sys/kernel/random/boot_id)"
