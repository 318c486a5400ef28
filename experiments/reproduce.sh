#!/usr/bin/env bash
# Reproduce the paper's figures on the fast defaults, into one folder.
#
#   bash experiments/reproduce.sh [OUT_DIR] [--full]
#
# Re-running with the same OUT_DIR resumes: finished jobs are not redone. The neuron-sharing run is
# always the paper's exact one; --full also uses the paper's 1000 brute-force trials (longer).
set -euo pipefail
cd "$(dirname "$0")/.."
out="outputs/reproduce/$(date +%Y-%m-%d_%H-%M-%S)"
ns_preset=default
lb_presets=random,rank,bruteforce
for arg in "$@"; do
  case "$arg" in
    --full) lb_presets=random,rank,bruteforce_paper ;;
    -*) echo "unknown option $arg (expected --full)" >&2; exit 2 ;;
    *) out="$arg" ;;
  esac
done
mkdir -p "$out"
echo "== neuron sharing (docs/paper.md §7.1) -> $out/neuron_sharing"
python experiments/neuron_sharing.py "preset=$ns_preset" "hydra.run.dir=$out/neuron_sharing"
echo "== multi-task lasso histograms (docs/paper.md §7.2-7.4) -> $out/lasso_bounds"
python experiments/lasso_bounds.py -m "preset=$lb_presets" "hydra.sweep.dir=$out/lasso_bounds"
python experiments/aggregate.py "$out/lasso_bounds"
echo "== done: figures under $out/*/figures and $out/lasso_bounds/*/figures"
