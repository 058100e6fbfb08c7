#!/usr/bin/env python3
"""Issue 20 item 2: move evaluation code out of the runtime, into `pose_perception.evaluation`.

Run from anywhere inside the repository (after merging the area branches):

    python3 tools/split_runtime_eval.py            # does the split, prints what it did
    python3 tools/split_runtime_eval.py --dry-run  # prints what it would move

Idempotent: a second run finds nothing to move and rewrites nothing. It works on whatever code the tree holds,
by module-path mapping, not by hand-listed lines:

1. `git mv` every evaluation module to `pose_perception/evaluation/<area>/` (same file name) and its tests to
   `test/evaluation/<area>/` (tests mirror the package). Which modules: EVAL_MODULES below, plus every
   `cli/bench*.py` / `cli/eval*.py` present (new bench / eval members move too).
2. Rewrites every reference in *.py *.md *.cfg *.toml *.xml *.sh *.txt *.yaml and the Makefile: dotted module
   names (`pose_perception.objects.synthetic`, in imports, strings, `python -m ...`, mypy overrides), imports of
   the parent-package form (`from pose_perception.radar import mars, pipeline` is split in two), relative
   imports touching a moved module (made absolute), and file paths (`objects/synthetic.py`,
   `pose_perception/pose_perception/cli/demo.py`, `test/objects/test_synthetic.py`, `samples/`).
3. Moved files sit one folder deeper: `Path(__file__).parents[N]` in them becomes `parents[N + 1]`.
4. setup.py gets `extras_require={"eval": ...}` (what only evaluation imports); pyproject.toml's ruff
   per-file rules and mypy file list follow the moved files; docs/DEVELOPING.md gets the layout section.

Another module to move (a new evaluation module a runtime file does not import): add it to EVAL_MODULES and run
again; files already moved are left alone. A runtime module that imports a moved one fails test/test_layers.py:
move it too, or split out the evaluation part.

test/test_layers.py (committed before the split) already checks that nothing outside
`pose_perception/evaluation/` imports it; after the split it checks the real thing.
"""

from __future__ import annotations

import argparse
import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PKG_DIR = REPO / "pose_perception"  # the ament_python package folder
MOD_DIR = PKG_DIR / "pose_perception"  # the Python package
TEST_DIR = PKG_DIR / "test"
EVAL = "evaluation"
EXTRA = "eval"  # setup.py extras_require key: pip install 'pose_perception[eval]'

# Evaluation modules, "<area>/<stem>" relative to the Python package; whole packages end in "/".
# Why each one is evaluation, and what stays, is in docs/DEVELOPING.md ("Runtime and evaluation") after the split.
EVAL_MODULES = [
    # synthetic scenes, scoring, the classical baseline, the REAL dev-data loader
    "objects/synthetic",
    "objects/metrics",
    "objects/baseline",
    "objects/realdata",
    # synthetic people, mocap clips, the REAL 2D keypoint scorer
    "human/synthetic",
    "human/mocap",
    "human/real_eval",
    # radar simulator, training, the MARS data set (loader, eval, training, sim-to-real statistics)
    "radar/simulator",
    "radar/training",
    "radar/sim_real",
    "radar/mars",
    "radar/mars_eval",
    "radar/mars_training",
    # sample photos, demo pictures and streams
    "samples/",
    # drives one node over DDS for the benchmarks (bench soak / onboarding)
    "ros/node_harness",
    # the evaluation commands (bench*, eval* are globbed as well); radar: `radar train / eval / mars-*` live there
    # beside `radar estimate`, which goes with them (one module, its evaluation imports are throughout)
    "cli/demo",
    "cli/radar",
    "cli/radar_mars",
]
EVAL_CLI_GLOBS = ["cli/bench*.py", "cli/eval*.py"]
# Tests that do not follow the test_<stem>.py name of the module they test: test path -> evaluation area.
EXTRA_TESTS = {
    "objects/test_eval_objects.py": "objects",
    "cli/test_radar_cli.py": "cli",
}
# Third-party packages only evaluation code imports (module -> PyPI name), for setup.py's `eval` extra.
EVAL_ONLY_DEPS = {"skimage": "scikit-image", "matplotlib": "matplotlib"}
TEXT_SUFFIXES = {".py", ".md", ".cfg", ".toml", ".xml", ".sh", ".txt", ".yaml", ".yml", ".in", ".rst"}
SKIP_DIRS = {".git", ".venv", "build", "install", "log", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache"}


def git(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(REPO), *args], check=check, capture_output=True, text=True)


def tracked(path: Path) -> bool:
    return git("ls-files", "--error-unmatch", str(path.relative_to(REPO)), check=False).returncode == 0


# ---------------------------------------------------------------------------------------------------- what moves


def module_moves() -> dict[str, str]:
    """Old module path -> new one, "<area>/<stem>" (packages: "<area>/"), over what the tree holds now or held
    before a previous run (so that a second run still knows the mapping for rewriting)."""
    moves: dict[str, str] = {}
    for entry in EVAL_MODULES:
        moves[entry] = f"{EVAL}/{entry}"
    for pattern in EVAL_CLI_GLOBS:
        for path in list(MOD_DIR.glob(pattern)) + list((MOD_DIR / EVAL).glob(pattern)):
            moves[f"cli/{path.stem}"] = f"{EVAL}/cli/{path.stem}"
    return moves


def test_moves(moves: dict[str, str]) -> dict[str, str]:
    """Old test file -> new one (relative to test/): test/<area>/test_<stem>.py of each moved module, the tests of
    a moved package (test/samples/), and EXTRA_TESTS."""
    out: dict[str, str] = {}
    for old in moves:
        area, _, stem = old.partition("/")
        if not stem:  # a package: its whole test folder
            for path in sorted((TEST_DIR / area).rglob("*")) if (TEST_DIR / area).is_dir() else []:
                if path.is_file() and "__pycache__" not in path.parts:
                    rel = path.relative_to(TEST_DIR).as_posix()
                    out[rel] = f"{EVAL}/{rel}"
            continue
        rel = f"{area}/test_{stem}.py"
        out[rel] = f"{EVAL}/{rel}"
    for rel, area in EXTRA_TESTS.items():
        out[rel] = f"{EVAL}/{area}/{Path(rel).name}"
    return out


# ------------------------------------------------------------------------------------------------------- moving


def move(src: Path, dst: Path, dry: bool) -> bool:
    if not src.exists() or dst.exists():
        return False
    print(f"  git mv {src.relative_to(REPO)} {dst.relative_to(REPO)}")
    if dry:
        return True
    dst.parent.mkdir(parents=True, exist_ok=True)
    if tracked(src):
        git("mv", str(src.relative_to(REPO)), str(dst.relative_to(REPO)))
    else:
        shutil.move(str(src), str(dst))
    return True


def ensure_init(folder: Path, doc: str, dry: bool) -> None:
    init = folder / "__init__.py"
    if init.exists():
        return
    print(f"  create {init.relative_to(REPO)}")
    if not dry:
        folder.mkdir(parents=True, exist_ok=True)
        init.write_text(f'"""{doc}"""\n' if doc else "")
        git("add", str(init.relative_to(REPO)))


PARENTS_RE = re.compile(r"(Path\(__file__\)(?:\.resolve\(\))?\.parents\[)(\d+)(\])")


def deepen(path: Path) -> None:
    """The file moved one folder down: paths it computes from its own location go up one more."""
    text = path.read_text()
    new = PARENTS_RE.sub(lambda m: f"{m.group(1)}{int(m.group(2)) + 1}{m.group(3)}", text)
    new = re.sub(r"(Path\(__file__\)(?:\.resolve\(\))?)((?:\.parent){2,})(?!s)", r"\1\2.parent", new)
    if new != text:
        path.write_text(new)


CONFTEST = '''"""The fixtures and helpers of test/{area}/ for the evaluation tests of the same area (tests mirror the package;
written by tools/split_runtime_eval.py)."""
import importlib.util
import sys
from pathlib import Path

_RUNTIME = Path(__file__).resolve().parents[2] / "{area}"
sys.path.insert(0, str(_RUNTIME))
_spec = importlib.util.spec_from_file_location("_runtime_{area}_conftest", _RUNTIME / "conftest.py")
_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_module)
globals().update({{k: v for k, v in vars(_module).items() if not k.startswith("__")}})
'''


# ------------------------------------------------------------------------------------------------------ rewriting


def dotted_map(moves: dict[str, str]) -> dict[str, str]:
    out = {}
    for old, new in moves.items():
        out["pose_perception." + old.rstrip("/").replace("/", ".")] = "pose_perception." + new.rstrip("/").replace(
            "/", "."
        )
    return out


def rewrite_import_froms(text: str, path: Path, dmap: dict[str, str], old_module: str | None) -> str:
    """`from pose_perception.<area> import a, b` naming moved modules (split per new package), and relative
    imports in a moved file or of a moved module (made absolute). old_module: the file's dotted name before this
    run moved it (relative imports meant the old place)."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        print(f"  WARNING: {path}: does not parse, imports left as they are")
        return text
    this = old_module or module_name(path)
    edits = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:
            if this is None:
                continue
            base = this.split(".")
            base = base[: len(base) - node.level + (1 if path.name == "__init__.py" else 0)]
            absolute = ".".join(base + ([node.module] if node.module else []))
        else:
            absolute = node.module or ""
        parts: list[tuple[str, list[str]]] = []  # (module, ["name", "name as alias"])
        for alias in node.names:
            full = f"{absolute}.{alias.name}"
            if full in dmap:  # a moved module imported from its parent package
                target, name = dmap[full].rsplit(".", 1)
            else:
                target, name = absolute, alias.name
                for old, new in sorted(dmap.items(), key=lambda kv: -len(kv[0])):
                    if target == old or target.startswith(old + "."):
                        target = new + target[len(old) :]
                        break
            item = f"{name} as {alias.asname}" if alias.asname else name
            if parts and parts[-1][0] == target:
                parts[-1][1].append(item)
            else:
                parts.append((target, [item]))
        if node.level:
            if old_module is None and [m for m, _ in parts] == [absolute]:
                continue  # a relative import between modules that stay
        elif not any(f"{absolute}.{a.name}" in dmap for a in node.names):
            continue  # a plain dotted name: the text rewrite handles it
        lines = text.splitlines(keepends=True)
        indent = lines[node.lineno - 1][: node.col_offset]
        stmt = ("\n" + indent).join(f"from {m} import {', '.join(names)}" for m, names in parts)
        edits.append((node.lineno, node.col_offset, node.end_lineno, node.end_col_offset, stmt))
    if not edits:
        return text
    lines = text.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    for lineno, col, end_lineno, end_col, stmt in sorted(edits, reverse=True):
        start = offsets[lineno - 1] + len(lines[lineno - 1].encode()[:col].decode())
        end = offsets[end_lineno - 1] + len(lines[end_lineno - 1].encode()[:end_col].decode())
        text = text[:start] + stmt + text[end:]
    return text


def module_name(path: Path) -> str | None:
    try:
        rel = path.relative_to(PKG_DIR)
    except ValueError:
        return None
    if rel.parts[0] != "pose_perception":
        return None
    return ".".join(rel.with_suffix("").parts).removesuffix(".__init__")


def path_patterns(moves: dict[str, str], tmoves: dict[str, str]) -> list[tuple[re.Pattern, str]]:
    """File-path references: `<prefix>objects/synthetic.py` -> `<prefix>evaluation/objects/synthetic.py`, where
    prefix is any of `pose_perception/` (repeated) or nothing; test paths likewise; packages as folders."""
    pats = []
    lead = r"(?<![\w./-])((?:pose_perception/)*)"
    for old, new in moves.items():
        if old.endswith("/"):
            pats.append((re.compile(lead + re.escape(old) + r"(?=[\w*{`'\" )\]]|$)", re.M), r"\1" + new))
        else:
            pats.append((re.compile(lead + re.escape(old) + r"\.py\b"), r"\1" + new + ".py"))
    for old, new in tmoves.items():
        pats.append((re.compile(lead + "test/" + re.escape(old) + r"\b"), r"\1test/" + new))
    for area in sorted({o.partition("/")[0] for o in moves if o.endswith("/")}):
        pats.append(
            (re.compile(lead + "test/" + re.escape(area) + r"/(?=[\w*`'\" )\]]|$)", re.M), rf"\1test/{EVAL}/{area}/")
        )
    # docs naming the bench / eval member modules by template: `cli/bench_<x>.py`
    pats.append((re.compile(lead + r"cli/(bench|eval)_([<{])"), rf"\1{EVAL}/cli/\2_\3"))
    return pats


def dotted_patterns(dmap: dict[str, str]) -> list[tuple[re.Pattern, str]]:
    return [
        (re.compile(r"(?<![\w.])" + re.escape(old) + r"(?![\w])"), new)
        for old, new in sorted(dmap.items(), key=lambda kv: -len(kv[0]))
    ]


def text_files() -> list[Path]:
    out = []
    for path in REPO.rglob("*"):
        if any(part in SKIP_DIRS for part in path.relative_to(REPO).parts):
            continue
        if path.is_file() and not path.is_symlink() and (path.suffix in TEXT_SUFFIXES or path.name == "Makefile"):
            out.append(path)
    return out


def rewrite_all(moves, tmoves, moved_now: dict[Path, str], dry: bool) -> list[Path]:
    dmap = dotted_map(moves)
    dpats = dotted_patterns(dmap)
    ppats = path_patterns(moves, tmoves)
    me = Path(__file__).resolve()
    changed = []
    for path in text_files():
        if path.resolve() == me:
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        new = text
        if path.suffix == ".py":
            new = rewrite_import_froms(new, path, dmap, moved_now.get(path))
        for pat, rep in dpats:
            new = pat.sub(rep, new)
        for pat, rep in ppats:
            new = pat.sub(rep, new)
        if new != text:
            changed.append(path)
            if not dry:
                path.write_text(new)
    return changed


# ------------------------------------------------------------------------------------------- packaging and docs


def patch_setup_py(dry: bool) -> None:
    setup = PKG_DIR / "setup.py"
    text = setup.read_text()
    if "extras_require" in text:
        return
    deps = ", ".join(f'"{v}"' for v in EVAL_ONLY_DEPS.values())
    block = (
        "    # pose_perception.evaluation (simulators, synthetic scenes, training, metrics, samples, bench / eval /\n"
        "    # demo commands) needs these on top of the runtime; package.xml declares them too, as colcon installs\n"
        "    # the whole package.\n"
        f'    extras_require={{"{EXTRA}": [{deps}]}},\n'
    )
    new, n = re.subn(r"(\n    install_requires=[^\n]*\n)", lambda m: m.group(1) + block, text, count=1)
    if n and not dry:
        setup.write_text(new)
        print("  setup.py: extras_require eval")


PACKAGE_XML_NOTE = (
    "  <!-- python3-matplotlib and python3-skimage are used only by pose_perception.evaluation (setup.py extra "
    '"eval"); declared here as colcon installs the whole package. -->\n'
)


def patch_package_xml(dry: bool) -> None:
    path = PKG_DIR / "package.xml"
    text = path.read_text()
    anchor = "  <exec_depend>python3-matplotlib</exec_depend>\n"
    if "pose_perception.evaluation" in text or anchor not in text:
        return
    if not dry:
        path.write_text(text.replace(anchor, PACKAGE_XML_NOTE + anchor, 1))
        git("add", str(path.relative_to(REPO)))
        print("  package.xml: which exec_depends are evaluation only")


def patch_pyproject(dry: bool) -> None:
    path = REPO / "pyproject.toml"
    text = path.read_text()
    new = text.replace('"pose_perception/pose_perception/cli/{', f'"pose_perception/pose_perception/{EVAL}/cli/{{')
    ros_rule = f'"pose_perception/pose_perception/{EVAL}/ros/**" = ["TID251", "TID253"]\n'
    if ros_rule not in new:
        new = new.replace(
            '"pose_perception/pose_perception/ros/**" = ["TID251", "TID253"]\n',
            '"pose_perception/pose_perception/ros/**" = ["TID251", "TID253"]\n' + ros_rule,
        )
    obj = f'"pose_perception/pose_perception/{EVAL}/objects"'
    if obj not in new:
        new = new.replace(
            '"pose_perception/pose_perception/objects",', f'"pose_perception/pose_perception/objects", {obj},'
        )
    if new != text and not dry:
        path.write_text(new)
        print("  pyproject.toml: ruff per-file rules, mypy files")


LAYOUT_MARK = "## Runtime and evaluation"
LAYOUT_DOC = f"""
{LAYOUT_MARK}
`pose_perception/` (the Python package) holds what a robot runs: `core/ human/ objects/ radar/ ros/` and the
commands that start or feed nodes (`cli/`: `up`, `bag`, `human`, `objects`). Everything that measures it lives in
`pose_perception/{EVAL}/`, with the same areas inside (`{EVAL}/objects/`: synthetic scenes, metrics, the
classical baseline, the REAL dev-data loader; `{EVAL}/human/`: synthetic people, mocap clips, the REAL
keypoint scorer; `{EVAL}/radar/`: simulator, training, MARS; `{EVAL}/samples/`: sample photos and demo
streams; `{EVAL}/ros/node_harness.py`; `{EVAL}/cli/`: `demo`, `radar`, `bench ...`, `eval ...`). The command
names are unchanged: `cli/main.py` loads the evaluation commands by name and skips them when their extra
dependencies are missing. The evaluation code may import the runtime; the runtime never imports the evaluation
package (`test/test_layers.py`). Its extra dependencies are setup.py's `eval` extra (`pip install .[eval]`);
package.xml keeps them as exec_depend, as colcon installs the whole package. Tests mirror this:
`test/{EVAL}/<area>/`. Made by `tools/split_runtime_eval.py` (issue 20 item 2); mesh shorthands `ycb:` /
`pybullet_data:` stay in the runtime (`objects/model.py`), as the shipped `config/object_pose.yaml` loads YCB
meshes and `mesh_roots` names both packages.
"""


def patch_test_layers(dry: bool) -> None:
    """test_layers' KNOWN exceptions of files that are evaluation now are no longer exceptions."""
    path = TEST_DIR / "test_layers.py"
    text = path.read_text()
    new = re.sub(rf'\n[ \t]*\("{EVAL}/[^"]*", "\w+"\):[^\n]*', "", text)
    if new != text and not dry:
        path.write_text(new)
        git("add", str(path.relative_to(REPO)))
        print("  test_layers.py: KNOWN exceptions of moved files removed")


def patch_developing(dry: bool) -> None:
    path = REPO / "docs" / "DEVELOPING.md"
    old = path.read_text()
    # the layering sentence: samples/ was a layer between ros/ and the domain; evaluation/ is now the top one
    text = re.sub(
        rf"Imports go down only: `cli/` -> `ros/` -> `{EVAL}/samples/`(\s*)-> domain",
        rf"Imports go down only: `{EVAL}/` -> `cli/` -> `ros/`\1-> domain",
        old,
    )
    if LAYOUT_MARK not in text:
        marker = "\n## Lint and types"
        text = text.replace(marker, LAYOUT_DOC + marker, 1) if marker in text else text + LAYOUT_DOC
    if text != old and not dry:
        path.write_text(text)
        git("add", str(path.relative_to(REPO)))
        print("  docs/DEVELOPING.md: layering sentence, section 'Runtime and evaluation'")


# ------------------------------------------------------------------------------------------------------------ main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="print the moves, change nothing")
    args = parser.parse_args()
    dry = args.dry_run

    moves = module_moves()
    tmoves = test_moves(moves)
    moved_now: dict[Path, str] = {}  # new path -> its old dotted module name (for relative imports)
    print("modules:")
    for old, new in moves.items():
        if old.endswith("/"):
            src, dst = MOD_DIR / old.rstrip("/"), MOD_DIR / new.rstrip("/")
            if src.is_dir() and not dst.exists():
                files = [p for p in src.rglob("*.py") if "__pycache__" not in p.parts]
                ensure_init(dst.parent, "", dry)
                if move(src, dst, dry):
                    for f in files:
                        moved_now[dst / f.relative_to(src)] = module_name(f)
            continue
        src, dst = MOD_DIR / f"{old}.py", MOD_DIR / f"{new}.py"
        if src.exists() and not dst.exists():
            ensure_init(
                MOD_DIR / EVAL,
                "Evaluation of pose_perception: simulators, synthetic data, training, "
                "metrics, baselines, samples and the bench / eval / demo commands (not needed on a robot).",
                dry,
            )
            ensure_init(dst.parent, "", dry)
            if move(src, dst, dry):
                moved_now[dst] = module_name(src)
    print("tests:")
    moved_tests = []
    for old, new in tmoves.items():
        src, dst = TEST_DIR / old, TEST_DIR / new
        if move(src, dst, dry):
            moved_tests.append(dst)
            area_conftest = TEST_DIR / old.partition("/")[0] / "conftest.py"
            new_conftest = dst.parent / "conftest.py"
            if area_conftest.exists() and area_conftest != src and not new_conftest.exists() and not dry:
                area = old.partition("/")[0]
                new_conftest.write_text(CONFTEST.format(area=area))
                git("add", str(new_conftest.relative_to(REPO)))
                print(f"  create {new_conftest.relative_to(REPO)}")
    if dry:
        return 0
    for path in list(moved_now) + moved_tests:
        if path.suffix == ".py":
            deepen(path)
    print("rewriting references:")
    changed = rewrite_all(moves, tmoves, moved_now, dry)
    for path in changed:
        print(f"  {path.relative_to(REPO)}")
    patch_setup_py(dry)
    patch_pyproject(dry)
    patch_package_xml(dry)
    patch_test_layers(dry)
    patch_developing(dry)
    touched = [*changed, PKG_DIR / "setup.py", REPO / "pyproject.toml", REPO / "docs" / "DEVELOPING.md"]
    git("add", "--", *sorted({str(p.relative_to(REPO)) for p in touched if tracked(p)}), check=False)
    print("done: review with `git status`, then run tools/lint.sh and the tests")
    return 0


if __name__ == "__main__":
    sys.exit(main())
