#!/bin/bash
# Start the server in the background, detached from the hook so the hook can finish.
set -e
APP=/tmp/codedeploy-hello-app
setsid nohup "$APP/bin/serve.py" >"$APP/server.log" 2>&1 </dev/null &
echo $! > "$APP/server.pid"
echo "started server $(cat "$APP/server.pid") on 127.0.0.1:${HELLO_APP_PORT:-8089}"
