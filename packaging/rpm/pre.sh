# codedeploy-agent-rs %pre ($1: 1 install, 2 upgrade). Takes over from the Ruby agent:
# stops it and keeps a copy of its settings; its deployment root and history stay in place.
if [ -f /opt/codedeploy-agent/bin/codedeploy-agent ] && head -n 1 /opt/codedeploy-agent/bin/codedeploy-agent | grep -q ruby; then
    echo "codedeploy-agent-rs: taking over from the Ruby codedeploy-agent; its configuration, deployment root and history are kept"
    if [ -d /run/systemd/system ]; then
        systemctl stop codedeploy-agent.service || true
        systemctl disable codedeploy-agent.service >/dev/null 2>&1 || true
    elif [ -x /etc/init.d/codedeploy-agent ]; then
        /etc/init.d/codedeploy-agent stop || true
    fi
    mkdir -p /var/lib/codedeploy-agent-rs
    if [ -f /etc/codedeploy-agent/conf/codedeployagent.yml ]; then
        cp -p /etc/codedeploy-agent/conf/codedeployagent.yml /var/lib/codedeploy-agent-rs/codedeployagent.yml.ruby-agent
    fi
fi
exit 0
