#!/usr/bin/env bash
# Builds the .deb and .rpm from the Cargo metadata into target/packages/.
#   packaging/build.sh                  build with the tools on PATH
#   packaging/build.sh --install-tools  first install the pinned cargo-deb and cargo-generate-rpm
#                                       into target/tools when missing (about 12 minutes on 2
#                                       busy cores; kept, so later runs reuse them)
# The release binary is built once and packaged by both tools (--no-build / default reuse).
# Tools in $CODEDEPLOY_TOOLS_DIR/bin (default target/tools/bin) are found before PATH's.
set -euo pipefail
cd "$(dirname "$0")/.."

TOOLS_DIR="${CODEDEPLOY_TOOLS_DIR:-$PWD/target/tools}"
export PATH="$TOOLS_DIR/bin:$PATH"

CARGO_DEB_VERSION=3.8.0
CARGO_GENERATE_RPM_VERSION=0.21.1

if [[ "${1:-}" == "--install-tools" ]]; then
    cargo deb --version 2>/dev/null | grep -q "$CARGO_DEB_VERSION" ||
        cargo install --locked --root "$TOOLS_DIR" "cargo-deb@$CARGO_DEB_VERSION"
    cargo generate-rpm --version 2>/dev/null | grep -q "$CARGO_GENERATE_RPM_VERSION" ||
        cargo install --locked --root "$TOOLS_DIR" "cargo-generate-rpm@$CARGO_GENERATE_RPM_VERSION"
fi

cargo build --release --bin codedeploy-agent
bin=target/release/codedeploy-agent
# `--version` prints "codedeploy-agent <v>"; .version carries the same <v> (docs/behaviour/layout.md#version-file).
version=$("$bin" --version | awk '{print $2}')
mkdir -p target/packaging-files target/packages
printf 'agent_version: %s\n' "$version" > target/packaging-files/dot-version

cargo deb --no-build --output target/packages/
cargo generate-rpm --output target/packages/
ls -l target/packages/
