# codedeploy-agent-rs %posttrans: start after a first install, restart after an upgrade
# (KillMode=process: applications started by hooks keep running).
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload || true
    if [ -e /var/lib/codedeploy-agent-rs.first-start ]; then
        systemctl start codedeploy-agent.service || true
    else
        systemctl try-restart codedeploy-agent.service || true
    fi
fi
rm -f /var/lib/codedeploy-agent-rs.first-start
exit 0
