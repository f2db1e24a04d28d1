# codedeploy-agent-rs %post ($1: 1 install, 2 upgrade): directories, configuration (created
# once, never replaced), the codedeploy-local link and the /usr/bin links, enabling on first install. Starting
# and restarting happen in %posttrans, after an obsoleted Ruby package's removal scripts
# (which stop a unit of the same name) have run.
mkdir -p /etc/codedeploy-agent/conf /var/log/aws/codedeploy-agent \
    /opt/codedeploy-agent/deployment-root /opt/codedeploy-agent/state/.pid
ln -sfn codedeploy-agent /opt/codedeploy-agent/bin/codedeploy-local
# On PATH, as the .deb ships them.
ln -sfn /opt/codedeploy-agent/bin/codedeploy-agent /usr/bin/codedeploy-agent
ln -sfn /opt/codedeploy-agent/bin/codedeploy-local /usr/bin/codedeploy-local
CONF=/etc/codedeploy-agent/conf/codedeployagent.yml
if [ ! -e "$CONF" ]; then
    if [ -f /var/lib/codedeploy-agent-rs/codedeployagent.yml.ruby-agent ]; then
        cp -p /var/lib/codedeploy-agent-rs/codedeployagent.yml.ruby-agent "$CONF"
    else
        install -m 0644 /opt/codedeploy-agent/share/codedeployagent.yml.default "$CONF"
    fi
fi
OLD=/etc/systemd/system/codedeploy-agent.service
if [ -f "$OLD" ] && ! grep -q 'codedeploy-agent run' "$OLD"; then
    mv "$OLD" "$OLD.ruby-agent.disabled"
fi
if [ -f /etc/init.d/codedeploy-agent ] && grep -q 'codedeploy-agent start' /etc/init.d/codedeploy-agent; then
    mv /etc/init.d/codedeploy-agent /etc/init.d/codedeploy-agent.ruby-agent.disabled
fi
if [ "$1" = 1 ]; then
    if command -v systemctl >/dev/null 2>&1; then
        systemctl enable codedeploy-agent.service >/dev/null 2>&1 || true
    fi
    touch /var/lib/codedeploy-agent-rs.first-start 2>/dev/null || true
fi
exit 0
