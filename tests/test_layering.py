"""Imports point one way: `bert_keras` (library) <- `tasks/` (installed as `bert_keras.tasks`) <- `bench/`.

The library never names its applications: a new task family touches only `tasks/<family>/`, and exporting a
fine-tuned run finds the family through the `task_class` its run metadata records.
"""

import ast
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def imported_modules(path: pathlib.Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import statement in `path`, relative imports resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            found.append((node.lineno, base))
            found.extend((node.lineno, f"{base}.{alias.name}") for alias in node.names)
    return found


def offending(folder: str, forbidden: tuple[str, ...]) -> list[str]:
    bad = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        for line, module in imported_modules(path):
            if any(module == f or module.startswith(f + ".") for f in forbidden):
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    return bad


def test_the_library_does_not_import_its_task_families():
    assert offending("bert_keras", ("tasks", "bert_keras.tasks", "bench")) == []


def test_task_families_do_not_import_bench_or_the_top_level_tasks_name():
    # Task code names itself `bert_keras.tasks...` only, so `python -m tasks.glue` in a checkout and an
    # installed `bert_keras.tasks.glue` load each class once (one Keras registration, one isinstance target).
    assert offending("tasks", ("bench", "tasks")) == []


def test_the_checker_sees_an_import_of_tasks(tmp_path, monkeypatch):
    # The check above must be able to fail: an absolute and a relative import of the task package.
    module = ROOT / "bert_keras" / "_layering_probe.py"
    module.write_text("from bert_keras.tasks.glue import GlueTask\nimport tasks.squad\n", encoding="utf-8")
    try:
        assert offending("bert_keras", ("tasks", "bert_keras.tasks")) == [
            "bert_keras/_layering_probe.py:1 imports bert_keras.tasks.glue",
            "bert_keras/_layering_probe.py:1 imports bert_keras.tasks.glue.GlueTask",
            "bert_keras/_layering_probe.py:2 imports tasks.squad"]
    finally:
        module.unlink()


def test_tasks_is_bert_keras_tasks_and_a_checkout_alias_loads_the_same_classes():
    code = ("import tasks.glue, bert_keras.tasks.glue as g, sys; "
            "assert tasks.glue.GlueTask is g.GlueTask; "
            "assert g.GlueTask.__module__ == 'bert_keras.tasks.glue.task'; "
            "assert not [m for m in sys.modules if m.startswith('tasks.') and m != 'tasks.glue']; print('ok')")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.stdout.strip() == "ok", result.stderr[-2000:]
