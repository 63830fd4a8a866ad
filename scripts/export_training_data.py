#!/usr/bin/env python3
"""Export the real training data the oai-train tests and examples use, from files that Python
packages ship (nothing is downloaded here):

- digits.csv: scikit-learn's bundled handwritten digits (1,797 8x8 images, 64 features 0..16 and
  the class in the last column), read from an installed scikit-learn or from a scikit-learn wheel
  given with --wheel (a wheel is a zip: no install, no numpy needed).
- pydoc_topics.txt: the English help texts of CPython's pydoc_data.topics, joined in key order.

Usage: export_training_data.py OUT_DIR [--wheel scikit_learn-*.whl]
"""
import argparse
import gzip
import importlib.util
import pathlib
import zipfile

DIGITS = "sklearn/datasets/data/digits.csv.gz"


def digits_gz(wheel):
    if wheel:
        with zipfile.ZipFile(wheel) as z:
            return z.read(DIGITS)
    spec = importlib.util.find_spec("sklearn")
    if spec is None:
        raise SystemExit("scikit-learn is not installed: pass --wheel (pip download --no-deps scikit-learn)")
    return (pathlib.Path(spec.origin).parent / "datasets/data/digits.csv.gz").read_bytes()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--wheel")
    a = p.parse_args()
    out = pathlib.Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    csv = gzip.decompress(digits_gz(a.wheel)).decode()
    (out / "digits.csv").write_text(csv)
    from pydoc_data.topics import topics
    text = "\n\n".join(topics[k] for k in sorted(topics))
    (out / "pydoc_topics.txt").write_text(text)
    print(f"digits: {len(csv.splitlines())} rows; pydoc topics: {len(text)} chars -> {out}")


if __name__ == "__main__":
    main()
