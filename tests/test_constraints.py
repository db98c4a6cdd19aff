"""constraints.txt, the versions that `.ci/run` and the README's commands install: exact pins, each within
pyproject.toml's ranges, every declared requirement pinned, and the environment these tests run in installed from it
(every package vnllmtest[test] pulls in is pinned, at the installed version)."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import PackageNotFoundError, distribution

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from support import REPO

INSTALL = 'pip install -c constraints.txt torch==2.13.0 -e ".[test]"'


def pins() -> dict[str, Requirement]:
    """constraints.txt by canonical name; a line that is not one exact `name==version` fails, naming it."""
    found: dict[str, Requirement] = {}
    for number, line in enumerate((REPO / "constraints.txt").read_text(encoding="utf-8").splitlines(), 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        pin = Requirement(text)
        where = f"constraints.txt line {number} ({text})"
        assert [spec.operator for spec in pin.specifier] == ["=="], f"{where}: not one exact ==version"
        assert not (pin.extras or pin.marker or pin.url), f"{where}: extras, markers or URLs do not belong in a pin"
        assert canonicalize_name(pin.name) not in found, f"{where}: pinned twice"
        found[canonicalize_name(pin.name)] = pin
    return found


def declared() -> list[Requirement]:
    """pyproject.toml's dependencies and every extra's."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = project.get("optional-dependencies", {}).values()
    return [Requirement(text) for text in [*project["dependencies"], *(text for extra in extras for text in extra)]]


def installed_closure(root: str) -> dict[str, str]:
    """Installed version of every distribution that `root` (a requirement) pulls in here, by canonical name."""
    versions: dict[str, str] = {}
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = [Requirement(root)]
    while todo:
        requirement = todo.pop()
        key = (canonicalize_name(requirement.name), frozenset(requirement.extras))
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = distribution(requirement.name)
        except PackageNotFoundError:
            raise AssertionError(f"{requirement} is required here but not installed") from None
        versions[key[0]] = dist.version
        for text in dist.requires or []:
            sub = Requirement(text)
            if sub.marker is None or any(sub.marker.evaluate({"extra": e}) for e in {"", *requirement.extras}):
                todo.append(sub)
    return versions


def test_pins_are_exact_torch_is_2_13_0_and_vnllmtest_is_not_pinned():
    pinned = pins()
    assert str(pinned["torch"].specifier) == "==2.13.0"
    assert "vnllmtest" not in pinned
    assert "bitsandbytes" in pinned


def test_every_requirement_of_pyproject_is_pinned_within_its_range():
    pinned = pins()
    problems = []
    for requirement in declared():
        pin = pinned.get(canonicalize_name(requirement.name))
        if pin is None:
            problems.append(f"{requirement}: not in constraints.txt")
            continue
        version = next(iter(pin.specifier)).version
        if not requirement.specifier.contains(version, prereleases=True):
            problems.append(f"{requirement}: constraints.txt pins {version}, outside pyproject.toml's range")
    assert not problems


def test_the_test_environment_is_installed_from_the_constraints():
    """What vnllmtest[test] pulls in here is exactly what constraints.txt pins: nothing unpinned, nothing at
    another version, no stale pin. On a mismatch, reinstall with the README's command or update the file.
    What torch itself requires may go unpinned: the CPU build pulls in a few packages, PyPI's CUDA build also
    nvidia-*-cu12 and triton, and those are torch's own (a pinned one must still match)."""
    closure = installed_closure("vnllmtest[test]")
    closure.pop("vnllmtest")
    torch_own = installed_closure("torch")
    pinned = pins()
    unpinned = sorted(
        f"{name}=={version}" for name, version in closure.items() if name not in pinned and name not in torch_own
    )
    drifted = sorted(
        f"{name} {closure[name]} (pinned {pin.specifier})"
        for name, pin in pinned.items()
        if name in closure and not pin.specifier.contains(closure[name], prereleases=True)
    )
    stale = sorted(name for name in pinned if name not in closure)
    assert (unpinned, drifted, stale) == ([], [], []), f"run: {INSTALL}"


def test_ci_and_the_readme_install_with_the_constraints():
    assert INSTALL in (REPO / ".ci" / "run").read_text(encoding="utf-8")
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    first_block = re.search(r"```bash\n(.*?)```", readme, re.S).group(1)
    installs = re.findall(r"pip install [^&\n]*", first_block)
    assert installs == ["pip install -c constraints.txt torch==2.13.0 -e . ", f"{INSTALL} "]
