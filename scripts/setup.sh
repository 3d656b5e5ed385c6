#!/usr/bin/env bash
# Sets up a fresh machine for the examples and the tests, from the package registries only:
#   - ScienceWorld (scripts/setup-scienceworld.sh: its jar from PyPI, a Java runtime from apt);
#   - a Vulkan driver for the GPU-path test (tests/gpu.rs), when the machine has none: Debian's
#     mesa-vulkan-drivers (lavapipe, a software Vulkan that runs burn's wgpu backend on the CPU).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup-scienceworld.sh

has_vulkan() {
    ldconfig -p 2>/dev/null | grep -q 'libvulkan.so.1' && ls /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json >/dev/null 2>&1
}
if has_vulkan; then
    echo "setup: a Vulkan driver is installed"
else
    echo "setup: installing a software Vulkan driver (mesa-vulkan-drivers: lavapipe) for the GPU-path test"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq mesa-vulkan-drivers libvulkan1 >/dev/null
fi
