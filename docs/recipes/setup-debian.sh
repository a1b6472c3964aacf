#!/bin/bash
# setup-debian.sh: prepare a Debian or Ubuntu server for the nightly m365audit (run as root, from a checkout of
# m365audit: `sudo bash docs/recipes/setup-debian.sh`). Safe to run again: it creates what is missing and
# resets owners and modes, and never overwrites the certificate, the env file or your local/ files.
#
# Creates: the system user and group m365audit; the venv /opt/m365audit/.venv with m365audit installed from this
# checkout; /usr/local/bin/m365audit-nightly; /etc/m365audit/{env,local/} and a certificate
# /etc/m365audit/audit.pem (root:m365audit 0640: the service user reads it, nobody else);
# /var/lib/m365audit/reports and /var/log/m365audit (m365audit, 0750). Then install ONE scheduler:
#   systemd: install -m 0644 docs/recipes/m365audit.{service,timer} /etc/systemd/system/ &&
#            systemctl daemon-reload && systemctl enable --now m365audit.timer
#   cron:    install -m 0644 docs/recipes/m365audit.cron /etc/cron.d/m365audit
set -euo pipefail

if [[ $(id -u) -ne 0 ]]; then
    echo "run as root: sudo bash $0" >&2
    exit 1
fi
here=$(cd "$(dirname "$0")" && pwd)
checkout=$(cd "$here/../.." && pwd)
if [[ ! -f $checkout/pyproject.toml ]]; then
    echo "run this script from a checkout of m365audit (docs/recipes/setup-debian.sh)" >&2
    exit 1
fi

# 1. packages (network: Debian mirrors)
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q python3 python3-venv openssl

# 2. the service user: no login, no home directory of its own
if ! getent group m365audit >/dev/null; then
    groupadd --system m365audit
fi
if ! id -u m365audit >/dev/null 2>&1; then
    useradd --system --gid m365audit --home-dir /var/lib/m365audit --no-create-home \
        --shell /usr/sbin/nologin --comment "m365audit nightly audit" m365audit
fi

# 3. the program (network: PyPI for the dependencies), owned by root: the service cannot change its own code
install -d -o root -g root -m 0755 /opt/m365audit
if [[ ! -x /opt/m365audit/.venv/bin/python ]]; then
    python3 -m venv /opt/m365audit/.venv
fi
/opt/m365audit/.venv/bin/pip install --quiet --upgrade pip
/opt/m365audit/.venv/bin/pip install --quiet "$checkout"
install -o root -g root -m 0755 "$here/m365audit-nightly" /usr/local/bin/m365audit-nightly

# 4. configuration: readable by the service, writable by root only
install -d -o root -g m365audit -m 0750 /etc/m365audit /etc/m365audit/local
if [[ ! -e /etc/m365audit/env ]]; then
    install -o root -g m365audit -m 0640 "$here/env.example" /etc/m365audit/env
    echo "fill in /etc/m365audit/env: AZURE_TENANT_ID, AZURE_CLIENT_ID and M365AUDIT_NOTIFY_URL"
fi
chown root:m365audit /etc/m365audit/env
chmod 0640 /etc/m365audit/env

# 5. the certificate: a new key pair when there is none; only the public part leaves this server
if [[ ! -e /etc/m365audit/audit.pem ]]; then
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    openssl req -x509 -newkey rsa:3072 -sha256 -days 730 -nodes -subj "/CN=m365audit" \
        -keyout "$work/audit.key" -out "$work/audit.crt" 2>/dev/null
    (umask 0077 && cat "$work/audit.key" "$work/audit.crt" >/etc/m365audit/audit.pem)
    install -o root -g root -m 0644 "$work/audit.crt" /etc/m365audit/audit.crt
    echo "upload the public part: az ad app credential reset --id <application-id> --cert @/etc/m365audit/audit.crt --append"
fi
chown root:m365audit /etc/m365audit/audit.pem
chmod 0640 /etc/m365audit/audit.pem

# 6. state and log folders: the only places the service writes
install -d -o m365audit -g m365audit -m 0750 /var/lib/m365audit /var/lib/m365audit/reports /var/log/m365audit

# 7. check as the service user, without signing in: the certificate must be readable for it
if ! runuser -u m365audit -- test -r /etc/m365audit/audit.pem; then
    echo "m365audit cannot read /etc/m365audit/audit.pem: chown root:m365audit, chmod 0640" >&2
    exit 1
fi
runuser -u m365audit -- /opt/m365audit/.venv/bin/m365audit --version
echo "ready. Test one night by hand: systemctl start m365audit.service (or, for cron:"
echo "  runuser -u m365audit -- bash -c 'set -a; . /etc/m365audit/env; set +a; m365audit-nightly --auth certificate --certificate /etc/m365audit/audit.pem --local /etc/m365audit/local --reports /var/lib/m365audit/reports --notify \"\$M365AUDIT_NOTIFY_URL\"')"
