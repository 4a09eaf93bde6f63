# Sourced by the real-client suites' run.sh: sets PORTICO_BIN to a build of
# this checkout unless the caller gave one (scripts/test does). Needs $root
# (the repository) and $work (a scratch dir the caller removes).
#
# A shared CARGO_TARGET_DIR may hold a build of another checkout of the same
# crate: touch our sources, build, copy, and check the copy is ours (it must
# accept this branch's config), a bounded number of times.
if [ -z "${PORTICO_BIN:-}" ]; then
  probe="$work/probe.toml"
  printf '[server]\nplain = "127.0.0.1:0"\n[[apps]]\nid = "1"\nkey = "k"\nsecret = "s"\nclient_events = true\n' > "$probe"
  for attempt in 1 2 3; do
    find "$root/src" -name '*.rs' -exec touch {} +
    (cd "$root" && cargo build --release --quiet --bin portico)
    cp "${CARGO_TARGET_DIR:-$root/target}/release/portico" "$work/portico"
    if "$work/portico" check --config "$probe" >/dev/null 2>&1; then break; fi
    echo "built binary is not this checkout's (attempt $attempt), rebuilding" >&2
  done
  export PORTICO_BIN="$work/portico"
fi
