#!/usr/bin/env bash
# Produces the tables of results/RESULTS.md (issue 5): accuracy / perplexity x method x sparsity, with and without the
# orthogonal transform. Results are cached in .wina-cache/, so an interrupted run resumes.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-results}
mkdir -p "$out"
tasks=tinystories,hellaswag,piqa,arc_easy,arc_challenge,openbookqa,copa,siqa,boolq
grid=(--methods dense,teal,wina,wina-paper --sparsity 0.25,0.4,0.5,0.65 --limit 100)
for model in stories260K tinystories-656k; do
  ./bin/wina.js eval --model "$model" --tasks "$tasks" "${grid[@]}" --md "$out/$model.md" --out "$out/$model.json"
  ./bin/wina.js eval --model "$model" --tasks "$tasks" "${grid[@]}" --transform --md "$out/$model-transform.md" --out "$out/$model-transform.json"
done
# Full WikiText-2 on stories260K (lm-eval's rolling windows), and the MODEL_CARD protocol on llama-28m-mixed.
./bin/wina.js eval --model stories260K --tasks wikitext2 --methods dense --md "$out/stories260K-wikitext2.md" --out "$out/stories260K-wikitext2.json"
./bin/wina.js eval --model llama-28m-mixed --tasks wikitext2 --protocol chunked --methods dense --md "$out/llama-28m-wikitext2.md" --out "$out/llama-28m-wikitext2.json"
# llama-28m-mixed: the multiple-choice tasks of issue 5 (200 items each); with the transform and greedy below.
./bin/wina.js eval --model llama-28m-mixed --tasks hellaswag,piqa,arc_easy,copa --methods dense,teal,wina,wina-paper --sparsity 0.25,0.4,0.5,0.65 --limit 200 --md "$out/llama-28m-mc.md" --out "$out/llama-28m-mc.json"
# llama-28m-mixed perplexity: WikiText-2 and the corpus held-out set per domain (MODEL_CARD's chunks, 8 spread
# chunks per task), dense / teal / wina / wina-paper, then with the transform, then with greedy allocation (one
# greedy profile per method calibrated on the training sample up to 0.65; its trace serves the lower sparsities).
held=../shared/data/corpus/heldout
ppl=(--tasks "wikitext2,$held/books,$held/code,$held/docs,$held/math,$held/reference" --protocol chunked --limit 8 --subset spread)
./bin/wina.js eval --model llama-28m-mixed "${ppl[@]}" --methods dense,teal,wina,wina-paper --sparsity 0.25,0.4,0.5,0.65 --md "$out/llama-28m-ppl.md" --out "$out/llama-28m-ppl.json"
for method in teal wina wina-paper; do
  profile="$out/llama-28m-greedy-$method.json"
  [ -f "$profile" ] || ./bin/wina.js calibrate --model llama-28m-mixed --data ../shared/data/corpus/train-sample --method "$method" --sparsity 0.65 --greedy --greedy-samples 4 --greedy-step 0.1 --out "$profile"
  ./bin/wina.js eval --model llama-28m-mixed "${ppl[@]}" --profile "$profile" --methods "$method" --sparsity 0.25,0.4,0.5,0.65 --md "$out/llama-28m-ppl-greedy-$method.md" --out "$out/llama-28m-ppl-greedy-$method.json"
done
./bin/wina.js eval --model llama-28m-mixed "${ppl[@]}" --methods dense,teal,wina,wina-paper --sparsity 0.25,0.4,0.5,0.65 --transform --md "$out/llama-28m-ppl-transform.md" --out "$out/llama-28m-ppl-transform.json"
# The same with the weights quantized on load to q8 and q4 (llama.cpp's Q8_0 and Q4_0 blocks).
for q in q8 q4; do
  ./bin/wina.js eval --model llama-28m-mixed --quantize "$q" "${ppl[@]}" --methods dense,teal,wina --sparsity 0.5,0.65 --md "$out/llama-28m-ppl-$q.md" --out "$out/llama-28m-ppl-$q.json"
done
# The same on llama.cpp's own GGUF files of the model (Q8_0, Q4_0, Q4_K_M; ../shared/fixtures/gguf).
for g in q8_0 q4_0 q4_k_m; do
  ./bin/wina.js eval --model "../shared/fixtures/gguf/llama-28m-mixed-$g.gguf" "${ppl[@]}" --methods dense,wina --sparsity 0.5,0.65 --md "$out/llama-28m-ppl-gguf-$g.md" --out "$out/llama-28m-ppl-gguf-$g.json"
done
# llama-28m-mixed multiple choice with the transform, then with each method's greedy profile (made above).
./bin/wina.js eval --model llama-28m-mixed --tasks hellaswag,piqa,arc_easy,copa --methods dense,teal,wina,wina-paper --sparsity 0.25,0.4,0.5,0.65 --limit 200 --transform --md "$out/llama-28m-mc-transform.md" --out "$out/llama-28m-mc-transform.json"
for method in teal wina wina-paper; do
  ./bin/wina.js eval --model llama-28m-mixed --tasks hellaswag,piqa,arc_easy,copa --profile "$out/llama-28m-greedy-$method.json" --methods "$method" --sparsity 0.25,0.4,0.5,0.65 --limit 200 --md "$out/llama-28m-mc-greedy-$method.md" --out "$out/llama-28m-mc-greedy-$method.json"
done
node scripts/summarize-results.mjs "$out"
