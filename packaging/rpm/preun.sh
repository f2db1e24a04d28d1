# codedeploy-agent-rs %preun ($1: 0 removal, 1 upgrade): stop and disable on removal only.
if [ "$1" = 0 ]; then
    if [ -d /run/systemd/system ]; then
        systemctl stop codedeploy-agent.service || true
    fi
    if command -v systemctl >/dev/null 2>&1; then
        systemctl disable codedeploy-agent.service >/dev/null 2>&1 || true
    fi
    rm -f /opt/codedeploy-agent/bin/codedeploy-local
    # Only our links: a file someone else put there stays.
    for l in /usr/bin/codedeploy-agent /usr/bin/codedeploy-local; do
        case "$(readlink "$l" 2>/dev/null)" in
        /opt/codedeploy-agent/bin/*) rm -f "$l" ;;
        esac
    done
fi
exit 0
