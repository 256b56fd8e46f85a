#!/usr/bin/env bash
# Seed inputs from the project's own files, for growing the corpus afresh:
#   fuzz/seed.sh DIR    writes DIR/config/* and DIR/import/*
# config: tests/config/{good,bad}/*.toml and examples/cluster.toml as they are.
# import: each contrib/legacy-import tree as ha.cf NUL haresources NUL authkeys (the
# input format of the import target; a tree with authkeys but no haresources gets an
# empty haresources, since a missing part can only be the last ones).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:?usage: fuzz/seed.sh DIR}
mkdir -p "$out/config" "$out/import"
for f in "$root"/tests/config/good/*.toml "$root"/tests/config/bad/*.toml "$root"/examples/cluster.toml; do
    base=$(basename "$(dirname "$f")")-$(basename "$f")
    cp "$f" "$out/config/$base"
done
for tree in "$root"/contrib/legacy-import/*/ "$root"/contrib/legacy-import/malformed/*/; do
    [[ -f $tree/ha.cf ]] || continue
    name=$(basename "$tree")
    {
        cat "$tree/ha.cf"
        if [[ -f $tree/haresources || -f $tree/authkeys ]]; then
            printf '\0'
            [[ -f $tree/haresources ]] && cat "$tree/haresources"
        fi
        if [[ -f $tree/authkeys ]]; then
            printf '\0'
            cat "$tree/authkeys"
        fi
    } >"$out/import/$name"
done
