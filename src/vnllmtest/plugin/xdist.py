"""pytest-xdist support: work units that keep each (suite, model) group on one worker (or split it into
--shard-size slices), one GPU per worker, and each worker's time per phase sent to the controller."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from vnllmtest import timing

PHASES_OUTPUT = "vnllmtest_phases"  # the key of a worker's seconds per phase in its workeroutput


class XdistScheduling:
    """With pytest-xdist's default `--dist load`, send each (suite, model) group to one worker, so the
    group is computed once, in batches, and each worker loads each model at most once. With
    `--shard-size N`, a group of a suite no model grades is split into slices of N items instead."""

    def __init__(self, shard_size: int | None):
        self.shard_size = shard_size
        self.timing_start = timing.snapshot()

    @pytest.hookimpl
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """A worker sends its seconds per phase to the controller (which gets them in pytest_testnodedown)."""
        output = getattr(session.config, "workeroutput", None)
        if output is not None:
            output[PHASES_OUTPUT] = timing.since(self.timing_start)

    @pytest.hookimpl
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> Any:
        if config.getoption("dist") != "load":
            return None
        from xdist.scheduler import LoadScopeScheduling

        shard_size = self.shard_size
        graded = ModelGradedSuites(config.rootpath)

        class SuiteGroupScheduling(LoadScopeScheduling):
            def __init__(self, *args: Any):
                super().__init__(*args)
                self.scopes: dict[str, str] = {}  # node id -> its work unit
                self.seen: dict[str, int] = {}  # group -> items of it seen so far

            def _split_scope(self, nodeid: str) -> str:
                if nodeid not in self.scopes:
                    self.scopes[nodeid] = self._scope_of(nodeid)
                return self.scopes[nodeid]

            def _scope_of(self, nodeid: str) -> str:
                head, bracket, params = nodeid.partition("[")
                if not (bracket and (".yaml::" in head or ".yml::" in head)):
                    return nodeid
                group = f"{head}[{params.split(':', 1)[0]}"
                if not shard_size or graded(head.split("::", 1)[0]):
                    return group
                position = self.seen[group] = self.seen.get(group, -1) + 1  # items arrive in collection order
                return f"{group}#{position // shard_size}"

        return SuiteGroupScheduling(config, log)


class ModelGradedSuites:
    """Whether a model grades the suite file of a node id, the judge or a model-graded metric (such
    groups are never sharded: the grading phase needs the whole group); each file is read once."""

    def __init__(self, root: Path):
        self.root = root
        self.known: dict[str, bool] = {}

    def __call__(self, relative: str) -> bool:
        from vnllmtest.suite import SuiteError, load_suite

        if relative not in self.known:
            try:
                self.known[relative] = load_suite(self.root / relative).spec.model_graded
            except SuiteError:
                self.known[relative] = False  # its collection error is reported by the workers
        return self.known[relative]


def pin_worker_device(worker_id: str) -> str | None:
    """Give xdist worker gwN the N-th GPU (round robin) through CUDA_VISIBLE_DEVICES, before CUDA starts:
    the GPUs already listed there, else those the NVIDIA driver shows. None on machines without GPUs."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        devices = [device.strip() for device in listed.split(",") if device.strip()]
    else:
        driver = Path("/proc/driver/nvidia/gpus")
        devices = [str(index) for index in range(len(list(driver.iterdir())))] if driver.is_dir() else []
    if not devices:
        return None
    chosen = devices[int(worker_id.removeprefix("gw") or 0) % len(devices)]
    os.environ["CUDA_VISIBLE_DEVICES"] = chosen
    return chosen
