#!/usr/bin/env bash
# Regenerate the committed references (CPU quick profiles of the memory, FLOPs and profile suites).
# Run it in the commit that changes a deterministic figure on purpose, and commit results/reference/.
#   PYTHON=/path/to/venv/bin/python results/reference/update.sh
set -euo pipefail
exec "$(dirname "$0")/check.sh" --update
