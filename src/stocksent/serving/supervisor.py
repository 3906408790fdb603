"""The parent of `serve --workers N`: uvicorn's supervisor, ending as a single process does.

uvicorn's Multiprocess takes SIGTERM and SIGINT for itself (it stops its workers, each gracefully)
and then returns as if nothing had happened, so the command would exit 0. Supervisor gives the
command's own handlers back once the workers are down and raises the signal that stopped it
again: SIGTERM then ends `serve` with status 143 and SIGINT with 130, as with one worker (where
uvicorn's Server does the same).
"""

from __future__ import annotations

import signal

from uvicorn.supervisors.multiprocess import SIGNALS, Multiprocess


class Supervisor(Multiprocess):
    """`Supervisor(config, sockets=[sock]).run()`, as uvicorn.run runs Multiprocess."""

    def __init__(self, config, sockets):
        self._handlers = {sig: signal.getsignal(sig) for sig in SIGNALS}  # before uvicorn replaces them
        super().__init__(config, sockets)
        self.stopped_by: int | None = None

    def handle_term(self) -> None:
        self.stopped_by = self.stopped_by or signal.SIGTERM
        super().handle_term()

    def handle_int(self) -> None:
        self.stopped_by = self.stopped_by or signal.SIGINT
        super().handle_int()

    def run(self) -> None:
        try:
            super().run()
        finally:
            for sig, handler in self._handlers.items():
                if handler is not None:
                    signal.signal(sig, handler)
        if self.stopped_by is not None:
            signal.raise_signal(self.stopped_by)
