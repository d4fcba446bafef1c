"""Instance statistics of our pre-training data beside google-research/bert's `create_pretraining_data.py`
on the same input and flags: instances, mean tokens, share shorter than max_seq_length / 2, random-next
share, masked-token share and the [MASK]/random/kept split, for the original script, our offline
`python -m bert_keras.pretraining.data.create_pretraining_data`, and one pass of the on-the-fly `pretraining_dataset`.
With --nsp, also where random-next B segments come from (same book, within 5 documents) vs a whole-corpus
draw.

    python bench/pretraining_data_stats.py [--seeds=12345,1,2,3,4,5,6,7] [--nsp] \\
      [--reference_dir=../shared/reference/google-research-bert] [--data_dir=../shared/data] \\
      [--results=bench/results/pretraining_data_stats]

Input: the 21st-25th Gutenberg books in sorted path order, each paragraph (blank-line separated, lines
joined) split into sentences at every `.`, `!`, `?` (the punctuation kept), one sentence a line, a blank
line after every 30 paragraphs and at the end of each book (as the reference README describes its input).

Why several seeds: the original draws the target length once per document, so the 10% of documents that
get a short target decide most of the short share and a good part of the instance count; on ~220
documents one run of the ORIGINAL varies by several % in count and several points in short share from
seed to seed. The tolerance check is made on the instances pooled over all seeds, and the original's own
seed-to-seed spread is printed beside it.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TOLERANCES = {"instances": 2.0, "short": 1.0, "random_next": 1.0, "masked": 0.5, "mask": 0.5, "random": 0.5,
              "kept": 0.5}  # % relative for instances, points for shares


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reference_dir", default=os.path.join(REPO, "..", "shared", "reference", "google-research-bert"))
    p.add_argument("--data_dir", default=os.path.join(REPO, "..", "shared", "data"))
    p.add_argument("--package_root", default=REPO, help="Where `bert_keras` is imported from (to measure "
                   "another version of the package with this script).")
    p.add_argument("--books", default="20:25", help="Slice of the sorted Gutenberg books.")
    p.add_argument("--paragraphs_per_document", type=int, default=30)
    p.add_argument("--seeds", default="12345")
    p.add_argument("--dupe_factor", type=int, default=1)
    p.add_argument("--max_seq_length", type=int, default=128)
    p.add_argument("--max_predictions_per_seq", type=int, default=20)
    p.add_argument("--masked_lm_prob", type=float, default=0.15)
    p.add_argument("--short_seq_prob", type=float, default=0.1)
    p.add_argument("--nsp", action="store_true", help="Also measure where random-next B segments come from.")
    p.add_argument("--nsp_shuffle_buffers", default="100,1000")
    p.add_argument("--workdir", default=None)
    p.add_argument("--results", default=None, help="Write <results>.json with every number measured.")
    return p.parse_args()


def paragraphs(path: str) -> list[str]:
    text = open(path, encoding="utf-8", errors="replace").read()
    return [" ".join(p.split()) for p in re.split(r"\n\s*\n", text) if p.strip()]


def write_book(path: str, out, paragraphs_per_document: int) -> int:
    """Writes one book in the original input format; returns its number of documents."""
    paras = paragraphs(path)
    documents = 0
    for start in range(0, len(paras), paragraphs_per_document):
        for paragraph in paras[start : start + paragraphs_per_document]:
            for sentence in re.findall(r"[^.!?]+[.!?]*", paragraph):
                if sentence.strip():
                    out.write(sentence.strip() + "\n")
        out.write("\n")
        documents += 1
    return documents


def flag_list(args, seed: int, vocab: str) -> list[str]:
    return [f"--vocab_file={vocab}", "--do_lower_case=True", f"--max_seq_length={args.max_seq_length}",
            f"--max_predictions_per_seq={args.max_predictions_per_seq}", f"--masked_lm_prob={args.masked_lm_prob}",
            f"--random_seed={seed}", f"--dupe_factor={args.dupe_factor}", f"--short_seq_prob={args.short_seq_prob}"]


def run(cmd: list[str], env: dict, cwd: str) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return time.perf_counter() - start


class Counts:
    """Sums over instances, from batches in our feature names."""

    def __init__(self, seq_length: int, mask_id: int):
        self.seq_length, self.mask_id = seq_length, mask_id
        self.n = self.tokens = self.short = self.random_next = 0
        self.predicted = self.as_mask = self.kept = 0

    def add(self, batch: dict) -> None:
        import numpy as np

        b = {k: np.asarray(v) for k, v in batch.items()}
        lengths = b["input_mask"].sum(1)
        weights = b["masked_lm_weights"] > 0
        at = np.take_along_axis(b["input_word_ids"], b["masked_lm_positions"], axis=1)
        self.n += len(lengths)
        self.tokens += int(lengths.sum())
        self.short += int((lengths < self.seq_length // 2).sum())
        self.random_next += int(b["next_sentence_labels"].reshape(-1).sum())
        self.predicted += int(weights.sum())
        self.as_mask += int((weights & (at == self.mask_id)).sum())
        self.kept += int((weights & (at == b["masked_lm_ids"])).sum())

    def stats(self) -> dict:
        return {
            "instances": self.n,
            "mean_tokens": self.tokens / self.n,
            "short": 100 * self.short / self.n,
            "random_next": 100 * self.random_next / self.n,
            "masked": 100 * self.predicted / self.tokens,
            "mask": 100 * self.as_mask / self.predicted,
            "random": 100 * (self.predicted - self.as_mask - self.kept) / self.predicted,
            "kept": 100 * self.kept / self.predicted,
        }


def tfrecord_counts(path: str, args, mask_id: int) -> Counts:
    from bert_keras.pretraining.data.tfrecords import read_pretraining_tfrecords

    counts = Counts(args.max_seq_length, mask_id)
    for batch in read_pretraining_tfrecords(path, seq_length=args.max_seq_length,
                                            max_predictions_per_seq=args.max_predictions_per_seq, batch_size=1024,
                                            repeat=False, shuffle=False, drop_remainder=False):
        counts.add(batch)
    return counts


def on_the_fly_counts(corpus: str, tokenizer, args, seed: int) -> Counts:
    from bert_keras.pretraining.data import pretraining_dataset

    counts = Counts(args.max_seq_length, tokenizer.mask_id)
    for _ in range(args.dupe_factor):  # dupe_factor passes = dupe_factor fresh one-pass iterators, new seeds
        ds = pretraining_dataset(corpus, tokenizer, seq_length=args.max_seq_length,
                                 max_predictions_per_seq=args.max_predictions_per_seq, batch_size=256,
                                 masked_lm_prob=args.masked_lm_prob, short_seq_prob=args.short_seq_prob,
                                 seed=seed + 7919 * _, repeat=False, drop_remainder=False)
        for batch in ds:
            counts.add(batch)
    return counts


def pooled(per_seed: list[Counts], seq_length: int, mask_id: int) -> dict:
    total = Counts(seq_length, mask_id)
    for c in per_seed:
        for k in ("n", "tokens", "short", "random_next", "predicted", "as_mask", "kept"):
            setattr(total, k, getattr(total, k) + getattr(c, k))
    return total.stats()


def check(ours: dict, original: dict) -> dict:
    """Per statistic: difference to the original (% for instances, points for shares) and within tolerance."""
    out = {}
    for key, tol in TOLERANCES.items():
        diff = 100 * (ours[key] / original[key] - 1) if key == "instances" else ours[key] - original[key]
        out[key] = {"diff": diff, "tolerance": tol, "ok": abs(diff) <= tol}
    return out


def nsp_sources(files: list[str], book_of_file: list[int], doc_books: list[list[int]], tokenizer, args,
                shuffle_buffer: int, seed: int) -> dict:
    """Share of random-next B segments from A's book / within 5 documents (corpus order) of A, ours vs the
    expectation of the original's uniform draw over all other documents, for the same A documents."""
    import numpy as np

    from bert_keras.pretraining.data.pretraining_dataset import instance_dataset

    ds = instance_dataset(files, tokenizer, seq_length=args.max_seq_length, short_seq_prob=args.short_seq_prob,
                          seed=seed, repeat=False, document_shuffle_buffer=shuffle_buffer,
                          features=["a_document", "b_document", "next_sentence_labels"]).batch(4096)
    a, b = [], []
    for batch in ds:
        random_next = batch["next_sentence_labels"].numpy() == 1
        a.append(batch["a_document"].numpy()[random_next])
        b.append(batch["b_document"].numpy()[random_next])
    a, b = np.concatenate(a), np.concatenate(b)
    # Corpus position of a document key (file index in the high bits, document number in the file below).
    file_offsets = np.concatenate([[0], np.cumsum([len(d) for d in doc_books])])
    books = np.concatenate([np.asarray(d) for d in doc_books])
    position = lambda keys: file_offsets[keys >> 40] + (keys & ((1 << 40) - 1))
    pa, pb = position(a), position(b)
    n = len(books)
    book_size = np.bincount(books)
    return {
        "random_next": int(len(a)),
        "same_book": 100 * float(np.mean(books[pa] == books[pb])),
        "same_book_whole_corpus": 100 * float(np.mean((book_size[books[pa]] - 1) / (n - 1))),
        "within_5_documents": 100 * float(np.mean(np.abs(pa - pb) <= 5)),
        "within_5_documents_whole_corpus": 100 * float(np.mean((np.minimum(n - 1, pa + 5) - np.maximum(0, pa - 5)) / (n - 1))),
    }


def main():
    args = parse_args()
    script = os.path.join(args.reference_dir, "create_pretraining_data.py")
    if not os.path.exists(script):
        raise SystemExit(f"The original script is not at {script} (see --reference_dir).")
    sys.path.insert(0, args.package_root)
    from bert_keras.resources import bert_base_uncased_vocab_file
    from bert_keras.tokenizer import BertTokenizer

    all_books = sorted(glob.glob(os.path.join(args.data_dir, "gutenberg", "*", "*.txt")))
    lo, hi = (int(x) if x else None for x in args.books.split(":"))
    books = all_books[lo:hi]
    if not books:
        raise SystemExit(f"No Gutenberg books {args.books} under {args.data_dir}/gutenberg (see --data_dir).")
    workdir = args.workdir or tempfile.mkdtemp(prefix="pretraining_data_stats_")
    os.makedirs(workdir, exist_ok=True)
    corpus = os.path.join(workdir, "corpus.txt")
    with open(corpus, "w", encoding="utf-8") as out:
        num_docs = sum(write_book(b, out, args.paragraphs_per_document) for b in books)
    vocab = bert_base_uncased_vocab_file()
    tokenizer = BertTokenizer(vocab, lower_case=True)
    env = dict(os.environ, PYTHONPATH=args.package_root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    seeds = [int(s) for s in args.seeds.split(",")]
    print(f"input: {len(books)} books ({os.path.basename(books[0])} .. {os.path.basename(books[-1])}), "
          f"{num_docs} documents; seeds {seeds}, dupe_factor {args.dupe_factor}; package {args.package_root}")

    runs = {"original": [], "ours_offline": [], "ours_on_the_fly": []}
    seconds = {k: 0.0 for k in runs}
    for seed in seeds:
        flags = flag_list(args, seed, vocab)
        orig_file, ours_file = (os.path.join(workdir, f"{name}_{seed}.tfrecord") for name in ("original", "ours"))
        seconds["original"] += run([sys.executable, script, f"--input_file={corpus}", f"--output_file={orig_file}",
                                    *flags], env, args.package_root)
        seconds["ours_offline"] += run([sys.executable, "-m", "bert_keras.pretraining.data.create_pretraining_data",
                                        f"--input_file={corpus}", f"--output_file={ours_file}", *flags], env,
                                       args.package_root)
        runs["original"].append(tfrecord_counts(orig_file, args, tokenizer.mask_id))
        runs["ours_offline"].append(tfrecord_counts(ours_file, args, tokenizer.mask_id))
        start = time.perf_counter()
        runs["ours_on_the_fly"].append(on_the_fly_counts(corpus, tokenizer, args, seed))
        seconds["ours_on_the_fly"] += time.perf_counter() - start
        print(f"seed {seed}: " + "; ".join(
            f"{k} {r[-1].stats()['instances']} inst, short {r[-1].stats()['short']:.1f}%, "
            f"random-next {r[-1].stats()['random_next']:.1f}%" for k, r in runs.items()), flush=True)

    result = {"input": {"books": [os.path.relpath(b, args.data_dir) for b in books], "documents": num_docs,
                        "paragraphs_per_document": args.paragraphs_per_document},
              "flags": {k: getattr(args, k) for k in ("max_seq_length", "max_predictions_per_seq", "masked_lm_prob",
                                                      "short_seq_prob", "dupe_factor")},
              "seeds": seeds, "package_root": args.package_root, "seconds": seconds,
              "per_seed": {k: [c.stats() for c in v] for k, v in runs.items()},
              "pooled": {k: pooled(v, args.max_seq_length, tokenizer.mask_id) for k, v in runs.items()}}
    if len(seeds) > 1:
        result["original_seed_sd"] = {key: statistics.stdev(s[key] for s in result["per_seed"]["original"])
                                      for key in TOLERANCES}
    result["check"] = {k: check(result["pooled"][k], result["pooled"]["original"])
                       for k in ("ours_offline", "ours_on_the_fly")}

    cols = ["instances", "mean_tokens", "short", "random_next", "masked", "mask", "random", "kept"]
    print(f"\npooled over {len(seeds)} seed(s) x dupe_factor {args.dupe_factor} "
          f"(instances: per run; shares in %):")
    print(f"{'':<18}" + "".join(f"{c:>12}" for c in cols))
    for name, stats in result["pooled"].items():
        row = dict(stats, instances=stats["instances"] / len(seeds))
        print(f"{name:<18}" + "".join(f"{row[c]:>12.1f}" if c == "instances" else f"{row[c]:>12.2f}" for c in cols))
    if "original_seed_sd" in result:
        sd = result["original_seed_sd"]
        print(f"{'original seed sd':<18}" + "".join(f"{sd.get(c, float('nan')):>12.2f}" for c in cols))
    for name, chk in result["check"].items():
        print(f"{name} vs original: " + ", ".join(
            f"{k} {v['diff']:+.2f}{'%' if k == 'instances' else 'pt'} ({'ok' if v['ok'] else 'OUT'} <= {v['tolerance']})"
            for k, v in chk.items()))

    if args.nsp:
        nsp_dir = os.path.join(workdir, "books")
        os.makedirs(nsp_dir, exist_ok=True)
        files, doc_books = [], []
        for i, book in enumerate(all_books):
            path = os.path.join(nsp_dir, f"{i:03d}.txt")
            with open(path, "w", encoding="utf-8") as out:
                doc_books.append([i] * write_book(book, out, args.paragraphs_per_document))
            files.append(path)
        one_file = os.path.join(workdir, "all_books.txt")
        with open(one_file, "w", encoding="utf-8") as out:
            for f in files:
                out.write(open(f, encoding="utf-8").read())
        flat = [[b for d in doc_books for b in d]]
        result["nsp"] = []
        for buffer in (int(x) for x in args.nsp_shuffle_buffers.split(",")):
            for label, fs, db in ((f"{len(files)} books, one file each", files, doc_books),
                                  (f"{len(files)} books in one file", [one_file], flat)):
                r = nsp_sources(fs, list(range(len(fs))), db, tokenizer, args, buffer, seeds[0])
                r.update(input=label, document_shuffle_buffer=buffer)
                result["nsp"].append(r)
                print(f"NSP sources, {label}, document_shuffle_buffer {buffer}: {r['random_next']} random-next; "
                      f"same book {r['same_book']:.1f}% (whole-corpus draw {r['same_book_whole_corpus']:.1f}%), "
                      f"within 5 documents {r['within_5_documents']:.1f}% "
                      f"({r['within_5_documents_whole_corpus']:.1f}%)", flush=True)

    if args.results:
        os.makedirs(os.path.dirname(os.path.abspath(args.results)), exist_ok=True)
        with open(args.results + ".json", "w") as f:
            json.dump(result, f, indent=1)
        print(f"wrote {args.results}.json")


if __name__ == "__main__":
    main()
