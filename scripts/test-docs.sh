#!/usr/bin/env bash
# Every document the repository points at exists: relative links in the Markdown files (and
# the heading an `#anchor` names), and doc citations in code and docs (`docs/FOO.md`,
# `CRYPTO.md §3`, `ARCHITECTURE §6`, `FOO.md, "Some heading"`: the file, for `§N` a heading
# numbered N in it, and for a quoted title a heading that starts with it).
# No network, well under a second. It first checks itself on a small tree with one dangling
# link of each kind, so a checker that quietly matches nothing fails too.
#
#   bash scripts/test-docs.sh            # the repository
#   bash scripts/test-docs.sh DIR        # another tree (what the self-check uses)
set -euo pipefail
cd "$(dirname "$0")/.."

check() {
  python3 - "$1" <<'PY'
import os, re, subprocess, sys

root = os.path.abspath(sys.argv[1])

def files():
    try:
        out = subprocess.run(["git", "-C", root, "ls-files", "-co", "--exclude-standard"],
                             check=True, capture_output=True, text=True).stdout.split("\n")
    except (subprocess.CalledProcessError, FileNotFoundError):
        out = [os.path.relpath(os.path.join(d, f), root)
               for d, _, fs in os.walk(root) for f in fs]
    skip = ("node_modules/", "target/", "fuzz/corpus", "fuzz/artifacts", "fuzz/regressions",
            "ui/dist/", ".git/")
    text = (".md", ".rs", ".ts", ".sh", ".py", ".toml", ".yml", ".yaml", ".c", ".html", ".css")
    for f in out:
        if f and f.endswith(text) and not any(s in f for s in skip) and os.path.isfile(os.path.join(root, f)):
            yield f

def skipped(f):
    # Vendored crates are upstream code with Ferry patches; only their README is ours. This
    # script cites made-up documents on purpose, for its self-check.
    return (f.startswith("vendor/") and f != "vendor/README.md") or f == "scripts/test-docs.sh"

def plain(title):
    return re.sub(r"`|\*\*", "", title).strip().lower()

def slug(title):
    t = re.sub(r"`|\*\*|\*|\[([^\]]*)\]\([^)]*\)", r"\1", title).strip().lower()
    t = re.sub(r"[^\w\- ]", "", t)
    return t.replace(" ", "-")

heading_cache = {}
def headings(path):
    """(anchors, section numbers, titles) of a Markdown file's headings."""
    if path not in heading_cache:
        anchors, numbers, titles, seen, fence = set(), set(), [], {}, False
        try:
            lines = open(path, encoding="utf-8").read().split("\n")
        except (OSError, UnicodeDecodeError):
            lines = []
        for line in lines:
            if line.lstrip().startswith("```"):
                fence = not fence
                continue
            m = None if fence else re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
            if not m:
                # A bold label opening a paragraph or list item is cited like a heading.
                b = None if fence else re.match(r"\s*(?:[-*]\s+)?\*\*([^*]+)\*\*", line)
                if b:
                    titles.append(plain(b.group(1)))
                continue
            s = slug(m.group(1))
            n = seen.get(s, 0)
            seen[s] = n + 1
            anchors.add(s if n == 0 else f"{s}-{n}")
            titles.append(plain(m.group(1)))
            num = re.match(r"(\d+(?:\.\d+)*)\.?\s", m.group(1))
            if num:
                numbers.add(num.group(1))
        heading_cache[path] = (anchors, numbers, titles)
    return heading_cache[path]

def resolve(citing, target):
    """A cited path, tried from the citing file's folder and then each folder above it."""
    d = os.path.dirname(os.path.join(root, citing))
    while True:
        p = os.path.normpath(os.path.join(d, target))
        if os.path.exists(p):
            return p
        if os.path.normpath(d) == root or not d.startswith(root):
            return None
        d = os.path.dirname(d)

def doc_named(citing, name):
    """`CRYPTO` or `CRYPTO.md`: beside the citing file, in docs/, or at the root."""
    name = name if name.endswith(".md") else name + ".md"
    for cand in (resolve(citing, name), os.path.join(root, "docs", name), os.path.join(root, name)):
        if cand and os.path.isfile(cand):
            return cand
    return None

problems = []
def bad(f, n, what):
    problems.append(f"{f}:{n}: {what}")

LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFDEF = re.compile(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$")
PATH = re.compile(r"(?<![\w/.<-])((?:\.\./)*(?:[\w.-]+/)*[\w.-]+\.md)(?![\w/])")
TITLED = re.compile(r"((?:\.\./)*(?:[\w.-]+/)*[A-Z][A-Z0-9-]*\.md)\)?(?:,\s|\s\()\"([^\"]+)\"")
SECTION = re.compile(r"(?<![\w/.-])([A-Z][A-Z0-9-]*[A-Z0-9])(\.md)?\)?,?\s?§\s?(\d+(?:\.\d+)*)")

for f in files():
    if skipped(f):
        continue
    full = os.path.join(root, f)
    try:
        lines = open(full, encoding="utf-8").read().split("\n")
    except (OSError, UnicodeDecodeError):
        continue
    md = f.endswith(".md")
    fence = False
    for n, line in enumerate(lines, 1):
        if md and line.lstrip().startswith("```"):
            fence = not fence
            continue
        # Markdown links, outside code (fenced blocks and `inline code` show, not link).
        if md and not fence:
            bare = re.sub(r"`[^`]*`", "", line)
            targets = [m.group(1) for m in LINK.finditer(bare)]
            m = REFDEF.match(bare)
            if m:
                targets.append(m.group(1))
            for t in targets:
                if re.match(r"^[a-z][a-z0-9+.-]*:", t, re.I):  # https:, mailto:, ferry:
                    continue
                path, _, anchor = t.partition("#")
                dest = full if not path else os.path.normpath(os.path.join(os.path.dirname(full), path))
                if not os.path.exists(dest):
                    bad(f, n, f"link to {t}: no such file")
                elif anchor and dest.endswith(".md") and anchor.lower() not in headings(dest)[0]:
                    bad(f, n, f"link to {t}: no heading with that anchor in {os.path.relpath(dest, root)}")
        # Citations, in any file: a path to a .md file, and `NAME §N`.
        for m in PATH.finditer(line):
            t = m.group(1)
            first = t.split("/")[0]
            if "/" in t and first not in ("..", ".") and not os.path.isdir(os.path.join(root, first)):
                continue  # an output path (`out/table.md`), not a document of ours
            if "/" not in t and not re.match(r"[A-Z][A-Z0-9-]*\.md$", t):
                continue  # only DOCUMENT.md names are citations without a folder
            found = resolve(f, t) if "/" in t else doc_named(f, t)
            if not found:
                bad(f, n, f"cites {t}, which does not exist")
        for m in TITLED.finditer(line):
            doc = resolve(f, m.group(1)) if "/" in m.group(1) else doc_named(f, m.group(1))
            want = plain(m.group(2))
            if doc and doc.endswith(".md") and not any(t.startswith(want) for t in headings(doc)[2]):
                bad(f, n, f"cites {m.group(1)}, \"{m.group(2)}\": no heading of that title in {os.path.relpath(doc, root)}")
        for m in SECTION.finditer(line):
            name, num = m.group(1), m.group(3)
            doc = doc_named(f, name)
            if not doc:
                bad(f, n, f"cites {name} §{num}: no document {name}.md")
            elif num not in headings(doc)[1]:
                bad(f, n, f"cites {name} §{num}: {os.path.relpath(doc, root)} has no heading numbered {num}")

if problems:
    print("Dangling references to documents:", file=sys.stderr)
    for p in problems:
        print("  " + p, file=sys.stderr)
    sys.exit(1)
PY
}

if [ $# -gt 0 ]; then
  check "$1"
  exit
fi

# The self-check: a tree with one dangling reference of each kind must fail on each.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/docs" "$tmp/src"
printf '# Guide\n\n## 1. Start\n\n## Second part\n' >"$tmp/docs/GUIDE.md"
printf 'See [guide](docs/GUIDE.md#second-part), GUIDE.md §1 and `[not a link](nowhere.md)`.\n' >"$tmp/README.md"
printf '// See docs/GUIDE.md and GUIDE §1, and GUIDE.md, "Second".\n' >"$tmp/src/ok.rs"
check "$tmp" || { echo "test-docs: the self-check's clean tree failed" >&2; exit 1; }
bad_cases=(
  'README.md|See [gone](docs/GONE.md).'
  'README.md|See [guide](docs/GUIDE.md#no-such-heading).'
  'src/a.rs|// Details: docs/GONE.md.'
  'src/a.rs|// Details: GUIDE §7.'
  'src/a.rs|// Details: MISSING §1.'
  'src/a.rs|// Details: docs/GUIDE.md, "Third part".'
)
for c in "${bad_cases[@]}"; do
  file=${c%%|*}
  cp "$tmp/README.md" "$tmp/README.bak"
  printf '%s\n' "${c#*|}" >>"$tmp/$file"
  if check "$tmp" 2>/dev/null; then
    echo "test-docs: the self-check missed a dangling reference: ${c#*|}" >&2
    exit 1
  fi
  mv "$tmp/README.bak" "$tmp/README.md"
  rm -f "$tmp/src/a.rs"
done

check .
echo "test-docs: every link and doc citation resolves"
