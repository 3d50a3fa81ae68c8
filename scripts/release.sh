#!/usr/bin/env bash
# Builds the release binary the way we ship it, and writes its SHA-256 and its signature.
#
#   scripts/release.sh                      # dist/toolshed-<version>-<target> and .sha256
#   TOOLSHED_RELEASE_KEY=~/.minisign/toolshed.key scripts/release.sh   # ... and .minisig
#
# Stripped, rustls only (no OpenSSL anywhere in the tree), with --remap-path-prefix so no
# build path is inside, and SOURCE_DATE_EPOCH (default: the commit's time) for the build
# date: two builds of one commit give the same bytes (docs/OPERATIONS.md, "Reproducible").
# An encrypted key takes its password from TOOLSHED_SIGNING_PASSWORD or the terminal.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}"
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}"
TARGET="$(rustc -vV | sed -n 's/^host: //p')"
SYSROOT="$(rustc --print sysroot)"
export RUSTFLAGS="--remap-path-prefix=$ROOT=/toolshed --remap-path-prefix=$CARGO_HOME=/cargo --remap-path-prefix=$SYSROOT=/rustc"
export CARGO_PROFILE_RELEASE_STRIP=symbols
# Its own target directory: other RUSTFLAGS would rebuild everything in target/ each time.
export CARGO_TARGET_DIR="$ROOT/target/dist-build"
cargo build --release --locked --bin toolshed

VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)"
mkdir -p dist
OUT="dist/toolshed-$VERSION-$TARGET"
cp "$CARGO_TARGET_DIR/release/toolshed" "$OUT"
(cd dist && sha256sum "$(basename "$OUT")" > "$(basename "$OUT").sha256")
if ldd "$OUT" 2>/dev/null | grep -qi ssl; then
  echo "release: $OUT links OpenSSL; it must not" >&2
  exit 1
fi
if [ -n "${TOOLSHED_RELEASE_KEY:-}" ]; then
  # The binary signs itself: the trusted comment names its own version, commit, target and
  # build time.
  "$OUT" sign --secret-key "$TOOLSHED_RELEASE_KEY" "$OUT"
else
  echo "release: unsigned (set TOOLSHED_RELEASE_KEY to a minisign secret key to sign)"
fi
echo "release: $OUT ($(stat -c %s "$OUT") bytes)"
cat "$OUT.sha256"
