"""Background live activity: events at a steady rate per simulated minute."""

from __future__ import annotations

import threading

from producer.simulator.simulator import Simulator


class LiveActivity:
    """Runs `Simulator.random_event` `per_minute` times per minute of the simulator's clock."""

    def __init__(self, sim: Simulator, per_minute: float) -> None:
        if per_minute <= 0:
            raise ValueError("per_minute must be positive")
        self._sim = sim
        self._per_second = per_minute / 60.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sim-activity", daemon=True)
        self.events = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        clock = self._sim.clock
        last = clock.now()
        owed = 0.0
        # wake once per simulated second (or per event if rarer), catch up on what is due
        step = max(1.0, 1.0 / self._per_second) if self._per_second < 1 else 1.0
        while not clock.sleep(step, self._stop):
            now = clock.now()
            owed += (now - last) * self._per_second
            last = now
            while owed >= 1.0 and not self._stop.is_set():
                self._sim.random_event()
                self.events += 1
                owed -= 1.0
