# Where cargo puts what it builds: CARGO_TARGET_DIR, a configured build.target-dir, or target/.
# Sourced by scripts/run, scripts/bench and scripts/test.

# ledger_bin PROFILE: the path of the `ledger` binary cargo builds in PROFILE (release, debug).
ledger_bin() {
  local dir
  dir=$(cargo metadata --format-version 1 --no-deps --locked | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
  [ -n "$dir" ] || { echo "cargo metadata did not name a target directory" >&2; return 1; }
  echo "$dir/$1/ledger"
}
