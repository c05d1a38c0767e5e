"""Upstream's ollama.service, as Ollama's scripts/install.sh writes it (configure_systemd): the binary, its user and
group, Restart=always. The real unit cannot be fetched here; tests write this one (validate's systemd-analyze, the vm
session's guest). `{binary}` is the ExecStart binary."""

OLLAMA_UNIT = """\
[Unit]
Description=Ollama Service
After=network-online.target

[Service]
ExecStart={binary} serve
User=ollama
Group=ollama
Restart=always
RestartSec=3
Environment="PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

[Install]
WantedBy=default.target
"""
