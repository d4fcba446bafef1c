#!/usr/bin/env bash
# Builds the corpus and vocab of configs/cpu_small.flags with the package's own commands:
#   bash configs/cpu_small_corpus.sh [DATA_DIR] [OUT_DIR]
# DATA_DIR (default: ../shared/data beside the repository, where this project's machines keep the real data)
# must hold gutenberg/<Author>/<Title>.txt (45 Project Gutenberg books) and wikitext-2-raw/wiki.test.raw.
# OUT_DIR (default: corpus/cpu_small under the working directory) receives:
#   train_books.txt  37 books by 16 authors          (python -m bert_keras.pretraining.data.prepare)
#   train_wiki.txt   WikiText-2 raw, test split      (python -m bert_keras.pretraining.data.prepare)
#   heldout_books.txt 8 books by 7 authors found nowhere in train (the demo corpus's held-out authors)
#   vocab.txt        uncased WordPiece vocab learned on the two train files (python -m bert_keras.pretraining.data.vocab)
# The flagfile reads these paths relative to the working directory (corpus/cpu_small/...).
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
DATA="${1:-$REPO/../shared/data}"
OUT="${2:-corpus/cpu_small}"
mkdir -p "$OUT"
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"  # this checkout's bert_keras, whatever is pip-installed

# Held out: every book of these authors (Baum, Burnett, Conrad x2, Hawthorne, Irving, Thoreau, Wilde).
HELD_OUT_AUTHORS=("Baum, L. Frank (Lyman Frank)" "Burnett, Frances Hodgson" "Conrad, Joseph"
                  "Hawthorne, Nathaniel" "Irving, Washington" "Thoreau, Henry David" "Wilde, Oscar")
train=() heldout=()
for dir in "$DATA"/gutenberg/*/; do
  author="$(basename "$dir")"
  held=0
  for h in "${HELD_OUT_AUTHORS[@]}"; do [[ "$author" == "$h" ]] && held=1; done
  for book in "$dir"*.txt; do
    if ((held)); then heldout+=("$book"); else train+=("$book"); fi
  done
done
join() { local IFS=,; echo "$*"; }  # --input takes a comma list; names like "Austen, Jane" are re-joined
echo "train: ${#train[@]} books; held out: ${#heldout[@]} books"

python -m bert_keras.pretraining.data.prepare --input="$(join "${train[@]}")" --output="$OUT/train_books.txt"
# This copy of WikiText-2 (the Hugging Face export) has one paragraph or "= Heading =" per line and no blank
# lines; prepare reads blank-line separated paragraphs (lines between blanks are hard-wrapped text), which
# would make the whole file one document of 8,100 sentences with its headings as text. Restoring the blank
# line after every line (as in the original WikiText release) lets prepare split it at its "= Title ="
# lines, one document per article. Sub-headings ("= = Career = =") are dropped: prepare's heading pattern
# does not recognise them and would keep them as sentences.
sed 's/\r$//; /^ *= = .* = = *$/d; s/$/\n/' "$DATA/wikitext-2-raw/wiki.test.raw" > "$OUT/wiki.test.paragraphs.raw"
python -m bert_keras.pretraining.data.prepare --input="$OUT/wiki.test.paragraphs.raw" --output="$OUT/train_wiki.txt"
python -m bert_keras.pretraining.data.prepare --input="$(join "${heldout[@]}")" --output="$OUT/heldout_books.txt"
python -m bert_keras.pretraining.data.vocab --input="$OUT/train_books.txt,$OUT/train_wiki.txt" --vocab_size="${VOCAB_SIZE:-8000}" \
  --min_count="${MIN_COUNT:-2}" --output="$OUT/vocab.txt"
