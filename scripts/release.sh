#!/usr/bin/env bash
# Builds the release binary the way we ship it, and writes its SHA-256 and its signature.
#
#   scripts/release.sh                      # dist/toolshed-<version>-<target> and .sha256
#   TOOLSHED_RELEASE_KEY=~/.minisign/toolshed.key scripts/release.sh   # ... and .minisig
#
# From a clean checkout only. Stripped, rustls only (no OpenSSL anywhere in the tree), with
# --remap-path-prefix so no build path is inside, and SOURCE_DATE_EPOCH (default: the
# commit's time) for the build date: two builds of one commit with the same toolchain give
# the same bytes (docs/OPERATIONS.md, "Releases"). An encrypted key takes its password from
# TOOLSHED_SIGNING_PASSWORD or the terminal.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
  echo "release: the checkout has uncommitted changes; a release is built from a commit" >&2
  exit 1
fi
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
  SOURCE_DATE_EPOCH="$(git log -1 --format=%ct)"
fi
case "$SOURCE_DATE_EPOCH" in
  ''|*[!0-9]*) echo "release: SOURCE_DATE_EPOCH is not a number of seconds" >&2; exit 1 ;;
esac
export SOURCE_DATE_EPOCH
if cargo tree --locked -e normal -i openssl-sys >/dev/null 2>&1; then
  echo "release: openssl-sys is in the dependency tree; TLS must be rustls only" >&2
  exit 1
fi
CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}"
TARGET="$(rustc -vV | sed -n 's/^host: //p')"
SYSROOT="$(rustc --print sysroot)"
# One flag per field (0x1f-separated), so paths with spaces stay whole.
SEP=$'\x1f'
export CARGO_ENCODED_RUSTFLAGS="--remap-path-prefix=$ROOT=/toolshed$SEP--remap-path-prefix=$CARGO_HOME=/cargo$SEP--remap-path-prefix=$SYSROOT=/rustc"
unset RUSTFLAGS
export CARGO_PROFILE_RELEASE_STRIP=symbols
# Its own target directory: other flags would rebuild everything in target/ each time.
export CARGO_TARGET_DIR="$ROOT/target/dist-build"
echo "release: $(rustc -V), $(cargo -V), SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH"
cargo build --release --locked --bin toolshed

VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)"
mkdir -p dist
OUT="dist/toolshed-$VERSION-$TARGET"
cp "$CARGO_TARGET_DIR/release/toolshed" "$OUT"
(cd dist && sha256sum "$(basename "$OUT")" > "$(basename "$OUT").sha256")
if [ -n "${TOOLSHED_RELEASE_KEY:-}" ]; then
  # The binary signs itself: the trusted comment names its own version, commit, target and
  # build time.
  "$OUT" sign --secret-key "$TOOLSHED_RELEASE_KEY" "$OUT"
else
  echo "release: unsigned (set TOOLSHED_RELEASE_KEY to a minisign secret key to sign)"
fi
echo "release: $OUT ($(stat -c %s "$OUT") bytes)"
cat "$OUT.sha256"
