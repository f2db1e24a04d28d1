#!/bin/bash
# Stop the server an earlier revision started, if it still runs.
APP=/tmp/codedeploy-hello-app
PIDFILE=$APP/server.pid
if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
  kill "$(cat "$PIDFILE")"
  echo "stopped server $(cat "$PIDFILE") ($LIFECYCLE_EVENT of $DEPLOYMENT_ID)"
fi
rm -f "$PIDFILE"
exit 0
