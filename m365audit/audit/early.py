"""Evaluate each rule as soon as every source it reads is collected, in one worker thread beside collection."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date

from m365audit.evaluate import evaluate_rule, rule_needs
from m365audit.models import Finding, PolicyPack, Snapshot, SourceResult


class EarlyEvaluation:
    """Findings computed while Graph is still answering; the same findings, in pack order, as evaluate().

    A rule is judged once all the sources it needs (engine.rule_needs) are finished, read or not, against a
    snapshot of the sources finished so far: a rule reads nothing else, so its finding is the one the whole
    snapshot gives. Rules whose sources never finish in this run (not collected) are judged at the end, against
    the whole snapshot. One worker thread: rules run one at a time, as evaluate() runs them, never two at once.
    """

    def __init__(self, pack: PolicyPack, today: date,
                 snapshot_of: Callable[[dict[str, SourceResult]], Snapshot],
                 tell: Callable[[SourceResult], None] | None = None) -> None:
        self._pack = pack
        self._today = today
        self._snapshot_of = snapshot_of
        self._tell = tell
        self._needs = [rule_needs(rule, pack) for rule in pack.rules]
        self._waiting = list(range(len(pack.rules)))
        self._arrived: dict[str, SourceResult] = {}
        self._futures: dict[int, Future[Finding]] = {}
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="m365audit-evaluate")

    def source_done(self, result: SourceResult) -> None:
        """A source is finished (read or not): start every rule that was waiting only for it; then tell."""
        self._arrived[result.key] = result
        ready = [i for i in self._waiting if self._needs[i] <= self._arrived.keys()]
        if ready:
            self._start(ready, self._snapshot_of(dict(self._arrived)))
        if self._tell is not None:
            self._tell(result)  # the progress display

    def _start(self, ready: list[int], snapshot: Snapshot) -> None:
        self._waiting = [i for i in self._waiting if i not in ready]
        for i in ready:
            self._futures[i] = self._worker.submit(evaluate_rule, self._pack.rules[i], snapshot, self._pack,
                                                   self._today)

    async def findings(self, snapshot: Snapshot) -> list[Finding]:
        """Every rule's finding in pack order; the rules still waiting are judged now, against ``snapshot``.

        The first rule (in pack order) that raised raises here, as evaluate() would.
        """
        self._start(list(self._waiting), snapshot)
        try:
            return [await asyncio.wrap_future(self._futures[i]) for i in range(len(self._pack.rules))]
        finally:
            self.close()

    def close(self) -> None:
        """Stop the worker: rules not yet started are dropped (a failed run judges nothing more)."""
        self._worker.shutdown(wait=False, cancel_futures=True)
