"""The wheel is a working tool: built from the checkout, installed outside it, run from elsewhere.

The build runs on a copy of the build inputs (a build writes ``build/`` and ``*.egg-info`` next
to its sources; the copy keeps the checkout untouched). The wheel goes into a fresh virtual
environment in tmp_path whose only way to the project's dependencies is a ``.pth`` line naming
the project venv's site-packages: packages listed there are importable, but the editable
install's finder there is not run, so ``ingest`` can only come from the wheel. Every command
that reads a file shipped with the package runs there, from a folder that is not the checkout,
without ``OKTADUCK_MAPPINGS``.
"""

from __future__ import annotations

import os
import re
import shutil
import site
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import orjson
import pytest

from ingest.mapping import default_mapping_dir

# builds and installs the wheel, once: the tests share one worker under make test
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("wheel")]

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "tests" / "samples" / "okta-developer-docs.ndjson"
# What setup.py and pyproject.toml read to build the wheel.
BUILD_INPUTS = ("pyproject.toml", "setup.py", "README.md", "ingest", "mappings")


@dataclass(frozen=True)
class Installed:
    wheel: Path
    venv: Path
    cwd: Path

    @property
    def site_packages(self) -> Path:
        return next((self.venv / "lib").glob("python3*/site-packages"))

    def run(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run the installed ``oktaduck`` console script in ``cwd``."""
        return self.run_program(str(self.venv / "bin" / "oktaduck"), *args, stdin=stdin)

    def run_program(
        self, program: str, *args: str, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [program, *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=_clean_env(),
            cwd=self.cwd,
            timeout=60,
            check=False,
        )


def _clean_env() -> dict[str, str]:
    """The environment without anything that points Python or oktaduck at the checkout."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("OKTADUCK_") and k not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"}
    }


def _build_isolation() -> list[str]:
    """Build with this venv's setuptools when it is what pyproject.toml asks for (no download,
    faster; the dev extra installs it), else let pip fetch that setuptools for the build."""
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["build-system"]["requires"]
    wanted = next(re.fullmatch(r"setuptools>=(\d+)", r) for r in requires if "setuptools" in r)
    assert wanted is not None, requires
    try:
        have = int(version("setuptools").split(".")[0])
    except PackageNotFoundError:
        return []
    return ["--no-build-isolation"] if have >= int(wanted.group(1)) else []


def _checked(cmd: list[str], cwd: Path, timeout: float) -> None:
    done = subprocess.run(
        cmd, capture_output=True, text=True, cwd=cwd, env=_clean_env(), timeout=timeout
    )
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    base = tmp_path_factory.mktemp("packaging")
    source = base / "source"
    source.mkdir()
    for name in BUILD_INPUTS:
        origin = REPO / name
        if origin.is_dir():
            shutil.copytree(origin, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(origin, source / name)
    dist = base / "dist"
    _checked(
        [
            *(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", *_build_isolation()),
            *("-w", str(dist), "."),
        ],
        cwd=source,
        timeout=180,
    )
    (wheel,) = dist.glob("oktaduck-*.whl")

    venv = base / "venv"
    _checked([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=base, timeout=60)
    target = next((venv / "lib").glob("python3*/site-packages"))
    (target / "project-dependencies.pth").write_text(
        "".join(f"{path}\n" for path in site.getsitepackages())
    )
    _checked(
        [
            *(sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python")),
            *("install", "--quiet", "--no-deps", "--no-index", str(wheel)),
        ],
        cwd=base,
        timeout=120,
    )
    cwd = base / "elsewhere"
    cwd.mkdir()
    return Installed(wheel, venv, cwd)


def test_the_wheel_carries_every_file_the_package_reads(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = set(wheel.namelist())
    wanted = {"ingest/py.typed", "ingest/simulate/data/event_types.json"}
    wanted |= {path.relative_to(REPO).as_posix() for path in (REPO / "ingest").rglob("*.py")}
    wanted |= {f"ingest/feeds/{path.name}" for path in (REPO / "ingest" / "feeds").glob("*.sql")}
    mappings = REPO / "mappings"
    wanted |= {
        f"ingest/bundled_mappings/{path.relative_to(mappings).as_posix()}"
        for path in mappings.rglob("*")
        if path.is_file() and path.suffix in {".toml", ".json", ".md"}
    }
    assert "ingest/bundled_mappings/okta/normalized.toml" in wanted
    assert "ingest/bundled_mappings/okta/lookups/ocsf_event_types.json" in wanted
    assert sorted(wanted - names) == []
    strays = [n for n in names if "__pycache__" in n or n.startswith(("mappings/", "tests/"))]
    assert strays == []


def test_the_installed_copy_finds_its_own_mappings(installed: Installed) -> None:
    done = installed.run_program(
        str(installed.venv / "bin" / "python"),
        "-c",
        "import ingest, ingest.mapping as m\n"
        "print(ingest.__file__)\nprint(m.default_mapping_dir())",
    )
    assert done.returncode == 0, done.stderr
    module, mappings = (Path(line) for line in done.stdout.splitlines())
    site_packages = installed.site_packages.resolve()
    assert module.resolve().is_relative_to(site_packages)
    assert mappings.resolve() == site_packages / "ingest" / "bundled_mappings"


def test_demo_runs_from_anywhere(installed: Installed) -> None:
    done = installed.run("demo", "--events", "500", "--db", "demo.duckdb")
    assert done.returncode == 0, done.stderr
    assert "Simulated Okta org at http://127.0.0.1:" in done.stdout
    assert "Late events collected: 40 of 40" in done.stdout
    assert (installed.cwd / "demo.duckdb").is_file()

    # The feeds' SQL ships too.
    feeds = installed.run("feed")
    assert feeds.returncode == 0, feeds.stderr
    assert "failed-logins" in feeds.stdout
    failed = installed.run("feed", "failed-logins", "--db", "demo.duckdb", "--since", "48h")
    assert failed.returncode == 0, failed.stderr
    rows = [orjson.loads(line) for line in failed.stdout.splitlines()]
    assert rows
    assert {row["outcome_result"] for row in rows} <= {"FAILURE", "DENY"}

    # So do the export formats' mapping files.
    export = installed.run(
        "export", "--to", "stdout", "--format", "ocsf", "--db", "demo.duckdb", "--since", "48h"
    )
    assert export.returncode == 0, export.stderr
    first = orjson.loads(export.stdout.splitlines()[0])
    assert first["metadata"]["product"]["vendor_name"] == "Okta"


@pytest.mark.parametrize(
    ("fmt", "path", "expected"),
    [
        ("normalized", ("event_type",), "user.session.start"),
        ("ecs", ("event", "category"), ["authentication", "session"]),
        ("ocsf", ("class_uid",), 3002),
    ],
)
def test_map_reads_the_shipped_mapping_and_lookups(
    installed: Installed, fmt: str, path: tuple[str, ...], expected: object
) -> None:
    event = SAMPLE.read_text().splitlines()[0]
    assert orjson.loads(event)["eventType"] == "user.session.start"
    done = installed.run("map", "--format", fmt, "--strict", stdin=event + "\n")
    assert done.returncode == 0, done.stderr
    (line,) = done.stdout.splitlines()
    value: object = orjson.loads(line)
    for key in path:
        assert isinstance(value, dict)
        value = value[key]
    assert value == expected


def test_mappings_check_and_coverage_run_from_anywhere(installed: Installed) -> None:
    done = installed.run("mappings", "check")
    assert done.returncode == 0, done.stderr
    for name in ("okta/normalized.toml", "okta/ecs.toml", "okta/ocsf.toml"):
        assert name in done.stdout
    # No catalog ships: coverage says how to give one instead of failing.
    coverage = installed.run("mappings", "coverage")
    assert coverage.returncode == 0, coverage.stderr
    assert "--catalog" in coverage.stdout


def test_an_empty_variable_does_not_hide_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OKTADUCK_MAPPINGS", "")
    assert (default_mapping_dir() / "okta" / "normalized.toml").is_file()
