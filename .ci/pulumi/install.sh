#!/usr/bin/env bash
# npm run pulumi:install — makes the Pulumi CLI that matches @pulumi/pulumi in
# package-lock.json available to the tests, the demo and the bench.
#
#  1. A compatible `pulumi` (same major, same or newer minor) with its Node.js
#     language host already on PATH: nothing to do.
#  2. The cache (.cache/pulumi/v<version>/bin, git-ignored) already holds it:
#     nothing to do.
#  3. Otherwise build it with Go into the cache: the CLI from the module
#     github.com/pulumi/pulumi/pkg/v3 pinned in .ci/pulumi/go.mod, plus two
#     small scripts beside it: pulumi-language-nodejs (a copy of
#     language-host.js kept beside it, so the cache holds no path into any
#     checkout: the Go language host's module is not served here) and
#     pulumi-resource-pulumi-nodejs (the SDK's dynamic-provider host, resolved
#     from the program's directory, as the CLI's own release ships it).
#
# Prints the directory that holds bin/pulumi on its last line.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
say() { printf 'pulumi:install: %s\n' "$*" >&2; }

want=$(node -p 'require(process.argv[1]).packages["node_modules/@pulumi/pulumi"].version' "$repo/package-lock.json")

# 1. A compatible CLI on PATH (not our own cache, which is checked below).
if [ -z "${PULUMI_NETNS_BUILD_CLI:-}" ] && command -v pulumi >/dev/null 2>&1 && command -v pulumi-language-nodejs >/dev/null 2>&1 \
  && [ "$(basename "$(dirname "$(command -v pulumi)")")" = bin ]; then
  have=$( (pulumi version 2>/dev/null || true) | sed 's/^v//')
  if node -e 'const [a, b] = process.argv.slice(1).map((v) => v.split(".").map(Number)); process.exit(a[0] === b[0] && (a[1] > b[1] || (a[1] === b[1] && a[2] >= b[2])) ? 0 : 1)' "$have" "$want" 2>/dev/null; then
    say "using pulumi v$have from PATH ($(command -v pulumi))"
    dirname "$(dirname "$(command -v pulumi)")"
    exit 0
  fi
  say "pulumi ${have:-(no version)} on PATH is not v$want or a newer v3; using the cache instead"
fi

pinned=$(awk '$1 == "require" && $2 == "github.com/pulumi/pulumi/pkg/v3" { print $3 } $1 == "github.com/pulumi/pulumi/pkg/v3" { print $2 }' "$here/go.mod" | head -n 1)
if [ "$pinned" != "v$want" ]; then
  say "package-lock.json has @pulumi/pulumi $want but .ci/pulumi/go.mod pins the CLI at ${pinned:-nothing}."
  say "Pin the same release: cd .ci/pulumi && go get github.com/pulumi/pulumi/pkg/v3@v$want github.com/pulumi/pulumi/sdk/v3@v$want && go mod tidy"
  exit 1
fi

root="$repo/.cache/pulumi/v$want"
bin="$root/bin"

# The two plugin scripts beside the CLI, (re)written on every run so a change here reaches the cache.
# The cache is shared between checkouts (a git worktree links its .cache/pulumi
# to the main checkout's), so nothing in it may point back into the checkout
# that ran this last: language-host.js is copied in beside its script, which
# finds it from its own directory. The CLI starts the script by its path on
# PATH, symlinks unresolved; cd -P resolves them, so a removed worktree's
# symlink path is not needed either.
write_scripts() {
  mkdir -p "$bin"
  local host lang prov
  host=$(mktemp "$bin/.language-host.XXXXXX")
  lang=$(mktemp "$bin/.language.XXXXXX")
  prov=$(mktemp "$bin/.provider.XXXXXX")
  cp "$here/language-host.js" "$host"
  chmod 644 "$host"
  cat >"$lang" <<'EOF'
#!/bin/sh
here=$(cd -P -- "$(dirname -- "$0")" && pwd -P) || exit 1
exec node "$here/language-host.js" "$@"
EOF
  # As the CLI's release ships it: the SDK's dynamic-provider host, resolved by
  # Node from the program's directory (so a node_modules further up is found too).
  cat >"$prov" <<'EOF'
#!/bin/sh
script=$(node -e "console.log(require.resolve('@pulumi/pulumi/cmd/dynamic-provider'))") || exit 1
exec node "$script" "$@"
EOF
  chmod 755 "$lang" "$prov"
  # Renamed into place: a CLI running from this cache meanwhile (or a concurrent
  # run of this script) never sees a half-written script.
  # The host first: a script already in place finds the new host, the new script never a missing one.
  mv -f "$host" "$bin/language-host.js"
  mv -f "$lang" "$bin/pulumi-language-nodejs"
  mv -f "$prov" "$bin/pulumi-resource-pulumi-nodejs"
}

if [ -x "$bin/pulumi" ] && [ "$("$bin/pulumi" version 2>/dev/null)" = "v$want" ]; then
  write_scripts
  say "pulumi v$want is cached in ${root#"$repo/"}"
  echo "$root"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  for g in /usr/local/go/bin/go /usr/lib/go/bin/go; do [ -x "$g" ] && PATH="$(dirname "$g"):$PATH" && break; done
fi
if ! command -v go >/dev/null 2>&1; then
  say "needs the Pulumi CLI v$want (or a newer v3) with pulumi-language-nodejs on PATH, or Go >= 1.25 to build it."
  say "Install Go >= 1.21 (it fetches the 1.25 toolchain go.mod asks for from the module proxy; Debian 12's golang-go is 1.19, too old) or the Pulumi CLI, then run npm run pulumi:install again."
  exit 1
fi

mkdir -p "$bin"
started=$(date +%s)
say "building the Pulumi CLI v$want with $(go version | awk '{print $3}') into ${root#"$repo/"} (first build: several minutes on 2 cores; later runs reuse it)"
say "downloading Go modules (about 300 MB the first time; silent while it runs)..."
(cd "$here" && go mod download)
total=$(cd "$here" && go list -deps github.com/pulumi/pulumi/pkg/v3/cmd/pulumi | wc -l)
say "compiling up to $total packages (a line per 100 compiled; packages already in Go's build cache are skipped)..."
set +e
(cd "$here" && go build -v -trimpath \
  -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$want" \
  -o "$bin/pulumi.$$.tmp" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi) 2>&1 \
  | awk '/ / { print; fflush(); next } { n++; if (n % 100 == 0) { printf "pulumi:install:   %d of %d packages compiled\n", n, total; fflush() } }' total="$total" >&2
status=${PIPESTATUS[0]}
set -e
if [ "$status" -ne 0 ]; then
  rm -f "$bin/pulumi.$$.tmp"
  say "go build failed (exit $status); see the lines above"
  exit 1
fi
mv "$bin/pulumi.$$.tmp" "$bin/pulumi"
write_scripts
say "built pulumi $("$bin/pulumi" version) in $(($(date +%s) - started)) s"
echo "$root"
