#!/bin/bash
# Stand-in for installing dependencies: record what was deployed, and when.
set -e
APP=/tmp/codedeploy-hello-app
echo "$APPLICATION_NAME $DEPLOYMENT_ID $(date -u +%FT%TZ)" > "$APP/public/installed"
echo "recorded install of $DEPLOYMENT_ID for group $DEPLOYMENT_GROUP_NAME"
