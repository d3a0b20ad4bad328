"""The Worker's module set: complete, deterministic, and what `flagedge bundle` prints."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from flagedge.bundle import DATA, PYTHON, BundleError, build_bundle

ROOT = Path(__file__).resolve().parent.parent


def test_the_bundle_holds_every_worker_and_sync_module_and_the_vendored_packages():
    bundle = build_bundle()
    names = set(bundle.by_name)
    sources = {
        p.relative_to(ROOT).as_posix()
        for d in ("worker", "sync")
        for p in (ROOT / d).rglob("*.py")
        if "__pycache__" not in p.parts
    }
    assert sources <= names
    assert {n for n in names if not n.startswith("python_modules/")} == sources | {"main.py"}
    assert {
        "python_modules/workers/__init__.py",
        "python_modules/httpx/__init__.py",
        "python_modules/anyio/__init__.py",
    } <= names
    assert all(m.content_type == PYTHON for m in bundle.modules if not m.name.startswith("python_"))
    assert all(
        m.content_type == DATA for m in bundle.modules if m.name.startswith("python_modules/")
    )
    assert not any(".dist-info/" in n or n.endswith((".pyc", ".pyi")) for n in names)
    assert b"from worker.entry import Default, FlagStore" in bundle.main.content


def test_the_same_tree_gives_the_same_bytes_and_hash_and_a_change_gives_another(tmp_path):
    assert build_bundle().hash == build_bundle().hash
    copy = tmp_path / "tree"
    for part in ("worker", "sync"):
        shutil.copytree(ROOT / part, copy / part, ignore=shutil.ignore_patterns("__pycache__"))
    same = build_bundle(copy)
    assert same.hash == build_bundle().hash
    (copy / "worker" / "plan.py").write_text((copy / "worker" / "plan.py").read_text() + "\n")
    assert build_bundle(copy).hash != same.hash


def test_a_tree_without_the_store_class_is_refused_before_any_upload(tmp_path):
    copy = tmp_path / "tree"
    for part in ("worker", "sync"):
        shutil.copytree(ROOT / part, copy / part, ignore=shutil.ignore_patterns("__pycache__"))
    entry = copy / "worker" / "entry.py"
    entry.write_text(entry.read_text().replace("class FlagStore(", "class Renamed("))
    with pytest.raises(BundleError, match="FlagStore"):
        build_bundle(copy)


def test_a_wheel_whose_hash_differs_from_the_pin_is_refused(tmp_path):
    vendor = tmp_path / "vendor.txt"
    vendor.write_text("h11==0.16.0 --hash=sha256:" + "0" * 64 + "\n")
    cache = tmp_path / "wheels"
    cache.mkdir()
    wheel = next((ROOT / ".cache" / "wheels").glob("h11-0.16.0-*.whl"))
    shutil.copy(wheel, cache / wheel.name)
    with pytest.raises(BundleError, match="pins"):
        build_bundle(vendor_file=vendor, wheel_cache=cache)


def test_flagedge_bundle_prints_the_manifest():
    out = subprocess.run(
        [sys.executable, "-m", "flagedge.cli", "bundle"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    bundle = build_bundle()
    assert out[-1] == (
        f"{len(bundle.modules)} modules, {bundle.size} bytes, bundle sha256 {bundle.hash}"
    )
    first = out[0].split()
    assert first == ["main.py", str(len(bundle.main.content)), bundle.main.sha256]
