#!/bin/bash
# Ask the server for /health until it answers 200 (20 tries, half a second apart).
URL="http://127.0.0.1:${HELLO_APP_PORT:-8089}/health"
for i in $(seq 1 20); do
  if python3 - "$URL" <<'PY'
import sys, urllib.request
try:
    sys.exit(0 if urllib.request.urlopen(sys.argv[1], timeout=2).status == 200 else 1)
except Exception:
    sys.exit(1)
PY
  then
    echo "health check passed on attempt $i"
    exit 0
  fi
  sleep 0.5
done
echo "health check failed: $URL did not answer 200"
exit 1
