# codedeploy-agent-rs %postun ($1: 0 removal, 1 upgrade). Configuration, deployment root and
# logs are kept on removal (rpm has no purge).
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload || true
fi
exit 0
