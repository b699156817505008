#!/usr/bin/env bash
# Refreshes the vendored NHS.UK frontend in assets/ from the npm registry.
# Usage: scripts/vendor-frontend.sh [version]   (default: the pinned version below)
set -euo pipefail

VERSION="${1:-10.6.1}"
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cd "$work"
npm pack --silent "nhsuk-frontend@${VERSION}" >/dev/null
tar -xzf "nhsuk-frontend-${VERSION}.tgz"
dist="package/dist/nhsuk"

assets="$root/assets"
rm -rf "$assets/images" "$assets/manifest.json" "$assets/nhsuk-frontend.min.css" "$assets/nhsuk-frontend.min.js"
mkdir -p "$assets/images"
cp "$dist/nhsuk-frontend.min.css" "$assets/nhsuk-frontend.min.css"
cp "$dist/nhsuk-frontend.min.js" "$assets/nhsuk-frontend.min.js"
# The CSS refers to /assets/images/...; keep the same layout.
cp "$dist"/assets/images/* "$assets/images/"
cp "$dist/assets/manifest.json" "$assets/manifest.json"
# Source maps point at files we do not ship.
sed -i -e 's|//# sourceMappingURL=[^ ]*$||' "$assets/nhsuk-frontend.min.js"
sed -i -e 's|/\*# sourceMappingURL=[^*]*\*/||' "$assets/nhsuk-frontend.min.css"

{
  echo "NHS.UK frontend ${VERSION} (npm package nhsuk-frontend, https://github.com/nhsuk/nhsuk-frontend)."
  echo "Vendored by scripts/vendor-frontend.sh; do not edit these files by hand."
  echo
  echo "The package states its licence in its README:"
  echo
  sed -n '/^## Licence/,/^## /p' package/README.md | sed '/^## [^L]/d'
  cat <<'MIT'
MIT License

Permission is hereby granted, free of charge, to any person obtaining a copy of this
software and associated documentation files (the "Software"), to deal in the Software
without restriction, including without limitation the rights to use, copy, modify, merge,
publish, distribute, sublicense, and/or sell copies of the Software, and to permit persons
to whom the Software is furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all copies or
substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED,
INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR
PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE
FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR
OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER
DEALINGS IN THE SOFTWARE.
MIT
} > "$assets/LICENSE-nhsuk-frontend.txt"

echo "nhsuk-frontend ${VERSION} vendored into assets/"
