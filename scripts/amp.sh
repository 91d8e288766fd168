#!/usr/bin/env bash
# WINA-AMP experiments of issue 6 on llama-28m-mixed (the commands that made results/amp-text and
# results/amp-tasks): report.md / report.json / report.html, amp.json and uniform.json in each folder.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-results}
mkdir -p "$out"
# a) text: the corpus sample (5 domains = labels) for training, 128-token passages cut from the held-out files.
nice -n 10 ./bin/wina.js amp run --model llama-28m-mixed \
  --train ../shared/data/corpus/train-sample --test passages:../shared/data/corpus/heldout \
  --seq-len 128 --train-per-label 30 --test-per-label 20 --sparsity 0.5 --seed 1 --out "$out/amp-text"
# b) tasks: items of five tasks (task = label), each task's items split 50/50 by item (seeded).
nice -n 10 ./bin/wina.js amp run --model llama-28m-mixed \
  --train tasks:hellaswag,piqa,arc_easy,copa,gsm8k --split 0.5 --seed 1 \
  --train-per-label 30 --test-per-label 20 --max-tokens 128 --sparsity 0.5 --out "$out/amp-tasks"
# a') the text experiment with k = 5 (the number of domains) instead of the silhouette's choice.
nice -n 10 ./bin/wina.js amp run --model llama-28m-mixed \
  --train ../shared/data/corpus/train-sample --test passages:../shared/data/corpus/heldout \
  --seq-len 128 --train-per-label 30 --test-per-label 20 --sparsity 0.5 --seed 1 --clusters 5 --out "$out/amp-text-k5"
# a'') the same with each profile's allocation from TEAL's greedy search (uniform profile included).
nice -n 10 ./bin/wina.js amp run --model llama-28m-mixed \
  --train ../shared/data/corpus/train-sample --test passages:../shared/data/corpus/heldout \
  --seq-len 128 --train-per-label 30 --test-per-label 20 --sparsity 0.5 --seed 1 --clusters 5 --allocation greedy \
  --out "$out/amp-text-k5-greedy"
