#!/usr/bin/env bash
# Library targets (Sources/*, what an iOS or Android app links) must use only what those platforms
# offer: no child processes, no configuration read from environment variables, no home directory,
# no pip, no fixed Unix tool paths. The `ember` command (Simulator/) may use them all.
#
# scripts/lint_platform.allow names today's known offenders as "path rule" lines; the list only
# shrinks (an entry that no longer matches is reported so it can be deleted). `make test` runs this.
set -euo pipefail
cd "$(dirname "$0")/.."

allow_file=scripts/lint_platform.allow
# rule name, then an extended regular expression matched on code lines (comments are skipped).
rules=(
    "process|\\bProcess\\(|posix_spawn|\\bsystem\\(|\\bpopen\\("
    "environment|ProcessInfo\\.processInfo\\.environment|\\bgetenv\\(|\\bsetenv\\("
    "home-directory|NSHomeDirectory|homeDirectoryForCurrentUser|\"~/"
    "pip|\\bpip3?\\b"
    "system-path|\"/usr/(bin|local|lib)|\"/opt/|\"/etc/"
)

allowed() {  # path rule → 0 when the allow-list names the pair
    grep -Eq "^$1[[:space:]]+$2([[:space:]]|$)" "$allow_file" 2>/dev/null
}

failures=0
used=()
for entry in "${rules[@]}"; do
    rule=${entry%%|*}
    pattern=${entry#*|}
    # file:line:text of code lines (not // comments) that match.
    while IFS= read -r hit; do
        [ -n "$hit" ] || continue
        path=${hit%%:*}
        text=${hit#*:*:}
        trimmed=${text#"${text%%[![:space:]]*}"}
        case "$trimmed" in //*) continue ;; esac
        if allowed "$path" "$rule"; then
            used+=("$path $rule")
            continue
        fi
        echo "lint_platform: $hit" >&2
        echo "lint_platform:   rule '$rule': library code must not use this on iOS/Android; move it to Simulator/ or take it as a parameter" >&2
        failures=$((failures + 1))
    done < <(grep -rnE --include='*.swift' "$pattern" Sources || true)
done

# Entries that no longer match anything: the list should shrink with them.
while read -r path rule _; do
    case "$path" in ''|'#'*) continue ;; esac
    found=0
    for pair in "${used[@]:-}"; do [ "$pair" = "$path $rule" ] && found=1 && break; done
    [ "$found" = 1 ] || echo "lint_platform: note: '$path $rule' in $allow_file no longer matches; delete the line" >&2
done < "$allow_file"

if [ "$failures" -gt 0 ]; then
    echo "lint_platform: $failures line(s) use APIs iOS/Android lack (allow-list: $allow_file)" >&2
    exit 1
fi
