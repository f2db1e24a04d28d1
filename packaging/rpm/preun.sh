# codedeploy-agent-rs %preun ($1: 0 removal, 1 upgrade): stop and disable on removal only.
if [ "$1" = 0 ]; then
    if [ -d /run/systemd/system ]; then
        systemctl stop codedeploy-agent.service || true
    fi
    if command -v systemctl >/dev/null 2>&1; then
        systemctl disable codedeploy-agent.service >/dev/null 2>&1 || true
    fi
    rm -f /opt/codedeploy-agent/bin/codedeploy-local
fi
exit 0
