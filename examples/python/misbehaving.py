"""An actor that fails in every way a handler can, for the node's bad-input tests."""
import random
import time

from plexspaces import actor, state, handler


@actor
class Misbehaving:
    count: int = state(default=0)
    blob: str = state(default="")

    @handler("increment")
    def increment(self, amount: int = 1) -> dict:
        self.count += amount
        return {"count": self.count}

    @handler("fail_after_change")
    def fail_after_change(self) -> dict:
        self.count += 1000
        raise ValueError("the order is not valid")

    @handler("bad_state")
    def bad_state(self) -> dict:
        self.blob = object()
        return {}

    @handler("cyclic_state")
    def cyclic_state(self) -> dict:
        loop = []
        loop.append(loop)
        self.blob = loop
        return {}

    @handler("bad_reply")
    def bad_reply(self) -> object:
        return {1, 2, 3}

    @handler("spin")
    def spin(self) -> dict:
        while True:
            pass

    @handler("hog")
    def hog(self) -> dict:
        chunks = []
        while True:
            chunks.append(bytearray(1 << 20))

    @handler("recurse")
    def recurse(self, depth: int = 0) -> int:
        import sys

        sys.setrecursionlimit(10_000_000)
        return self.recurse(depth + 1) + 1

    @handler("grow")
    def grow(self, kib: int) -> dict:
        self.blob = "x" * (kib * 1024)
        return {"size": len(self.blob)}

    @handler("noisy")
    def noisy(self) -> dict:
        print("to stdout", self.count)
        import sys

        print("to stderr", file=sys.stderr)
        return {"now": time.time() > 1_600_000_000, "random": 0 <= random.random() < 1}
