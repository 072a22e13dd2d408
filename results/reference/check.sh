#!/usr/bin/env bash
# Regression check of the deterministic figures against the committed references.
#
#   results/reference/check.sh            run the CPU quick profiles of the memory, FLOPs and
#                                         profile suites and compare them with results/reference/ (CI)
#   results/reference/check.sh --update   run them and replace the references (then commit them
#                                         in the same commit as the change that moved them)
#
# Only deterministic columns (params, MAC/FLOP counts, exact tensor accounting, the eager step's
# dispatched ops and their bytes) and statuses are judged (`bench.py compare --judge exact`);
# timings are not, on a shared CI machine. A cell present in only one of the two runs fails too
# (`--require-same-cells`). The interpreter is $PYTHON (default .venv/bin/python); cells run
# $WORKERS at a time (default 2). Each comparison's Markdown report is left in
# results/runs/ci-<suite>-cpu-quick/compare.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON="${PYTHON:-.venv/bin/python}"
SUITES=(memory flops profile)

mode="${1:-check}"
case "$mode" in
  check | --update) ;;
  *) echo "check.sh: bad argument '$mode'; valid: --update, or nothing to check" >&2; exit 2 ;;
esac

status=0
for suite in "${SUITES[@]}"; do
  run="results/runs/ci-$suite-cpu-quick"
  reference="results/reference/$suite-cpu-quick"
  rm -rf "$run"
  # two cells at a time on CI's 2 cores: the judged figures do not depend on the machine's load
  if ! "$PYTHON" bench.py --suite "$suite" --quick --device cpu --out "$run" --no-progress \
    --workers "${WORKERS:-2}"; then
    echo "check.sh: the $suite suite's quick profile did not run" >&2
    status=1
    continue
  fi
  if [[ "$mode" == --update ]]; then
    mkdir -p "$reference"
    cp "$run/rows.csv" "$run/env.json" "$reference/"
    echo "updated $reference (commit it with the change that moved it)"
  elif [[ ! -f "$reference/rows.csv" ]]; then
    echo "check.sh: no reference $reference/rows.csv; create it with results/reference/update.sh" >&2
    status=1
  else
    "$PYTHON" bench.py compare "$reference" "$run" --judge exact --require-same-cells \
      --out "$run/compare.md" || status=1
  fi
done
if [[ "$status" != 0 && "$mode" == check ]]; then
  echo "check.sh: FAILED (see above); if the figures moved on purpose, run results/reference/update.sh and commit results/reference/" >&2
fi
exit "$status"
