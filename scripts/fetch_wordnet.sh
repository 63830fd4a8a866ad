#!/usr/bin/env bash
# Unpack WordNet 3.0 (Debian's `wordnet-base`: ~117k synset glosses of real English) for the
# retrieval bench. Downloads the .deb from the Debian archive with apt (no install, no root).
#
# Usage: scripts/fetch_wordnet.sh [DIR]     (default: target/wordnet)
# Prints the environment to export; the bench reads OAI_WORDNET.
set -euo pipefail
dir="${1:-target/wordnet}"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
if [[ ! -f "$dir/usr/share/wordnet/data.noun" ]]; then
  (cd "$dir" && apt-get download wordnet-base >/dev/null && dpkg-deb -x wordnet-base_*.deb .)
fi
echo "export OAI_WORDNET=$dir/usr/share/wordnet"
