#!/usr/bin/env bash
# Installs the Debian packages the test suite uses: real sshd and dockerd for the lab (nodes in
# network namespaces), qemu for running ARM images, a local registry, and the tools that build and
# read SD-card images. Run as root on Debian 12 (CI does, through .ci/run).
set -euo pipefail
if [ "$(id -u)" != 0 ]; then
  echo "install-test-deps: run as root (sudo $0)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends \
  docker.io containerd runc iptables iproute2 kmod \
  openssh-server openssh-client sudo \
  qemu-user-static binfmt-support \
  libc6-arm64-cross libstdc++6-arm64-cross libgcc-s1-arm64-cross libatomic1-arm64-cross \
  libc6-armhf-cross libstdc++6-armhf-cross libgcc-s1-armhf-cross libatomic1-armhf-cross \
  docker-registry \
  fdisk dosfstools mtools e2fsprogs e2tools xz-utils busybox-static \
  strace zip gzip openssl \
  dpkg-dev
