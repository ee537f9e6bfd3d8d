#!/bin/sh
# guard's container entrypoint.
#
#   guard-entrypoint ARGS...            runs `guard ARGS...` (the image's default CMD is
#                                       `run --listen-host 0.0.0.0 ...`: a regular proxy)
#   GUARD_GATEWAY=1 guard-entrypoint run [guard run options]
#                                       a transparent gateway for the sandbox network
#                                       GUARD_SANDBOX_SUBNET: its TCP 80/443 goes to guard,
#                                       DNS to guard's stub, everything else is refused
#
# Gateway settings (environment):
#   GUARD_SANDBOX_SUBNET     the sandbox network, e.g. 172.30.0.0/24 (required)
#   GUARD_SANDBOX_INTERFACE  its interface here (default: the one with an address in it)
#   GUARD_PORT               transparent listener port (default 8080)
#   GUARD_DNS_PORT           DNS stub port (default 5353; the sandbox's UDP 53 goes there)
#   GUARD_CONFDIR            CA directory (default /data/confdir); the entrypoint writes
#                            guard-ca-bundle.pem (system CAs + guard CA) there for clients
# Needs NET_ADMIN (iptables). Sets no sysctl: guard makes the outbound connections itself,
# so the container does not forward packets.
set -eu

if [ "${GUARD_GATEWAY:-0}" != 1 ]; then
    exec guard "$@"
fi

if [ "${1:-run}" != run ]; then
    echo "guard-entrypoint: gateway mode runs \`guard run\`; got: $*" >&2
    exit 2
fi
[ $# -gt 0 ] && shift

subnet=${GUARD_SANDBOX_SUBNET:?set GUARD_SANDBOX_SUBNET to the sandbox network (CIDR)}
port=${GUARD_PORT:-8080}
dns_port=${GUARD_DNS_PORT:-5353}
confdir=${GUARD_CONFDIR:-/data/confdir}
iface=${GUARD_SANDBOX_INTERFACE:-$(ip -o -4 addr show to "$subnet" | awk '{print $2; exit}')}
iface=${iface%%@*}
if [ -z "$iface" ]; then
    echo "guard-entrypoint: no interface has an address in $subnet" >&2
    exit 1
fi
address=$(ip -o -4 addr show dev "$iface" | awk '{split($4, a, "/"); print a[1]; exit}')

# A restarted container keeps its network namespace: remove the rules of the last run.
guard net rules --interface "$iface" --port "$port" --dns-port "$dns_port" --remove --apply
guard net rules --interface "$iface" --port "$port" --dns-port "$dns_port" --apply
echo "guard-entrypoint: sandbox $subnet on $iface ($address): TCP 80/443 -> :$port," \
     "DNS -> :$dns_port, everything else refused"

guard ca --confdir "$confdir" bundle "$confdir/guard-ca-bundle.pem" >/dev/null

exec guard run --mode transparent --listen-host 0.0.0.0 --listen-port "$port" \
    --dns-listen "0.0.0.0:$dns_port" --dns-answer "$address" --confdir "$confdir" "$@"
