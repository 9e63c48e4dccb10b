#!/usr/bin/env bash
# End-to-end test of LVS-NAT through lb, with 1 worker and again with 2 workers: the nat part of
# tests/e2e/test_lab.sh, which runs every mode (nat, tun, dr) and takes the same options.
#
# usage: tests/e2e/test_nat.sh [--workers 1|2|1,2] [--director lb|kernel] [--keep-tmp]
#   --director kernel  checks the lab itself without lb: the director is the kernel with nftables
#                      DNAT round robin; checks that need lb are skipped. Needs `nft`.
# env: LB_BUILD_DIR (default build): where lb/lb and tools/lbctl are.
#      LB_E2E_CONF_SED: a sed script applied to the config copies (experiments only; noted).
#
# Prints `PASS name` or `FAIL name: why` per check and ends with `N passed, N failed`.
# Exit status 0 only if nothing failed. Needs root.
case "${1:-}" in -h | --help)
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
esac
exec bash "$(dirname "${BASH_SOURCE[0]}")/test_lab.sh" --modes nat "$@"
