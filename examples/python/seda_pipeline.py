"""A staged (SEDA) order pipeline: three stages connected by bounded channels, each at its
own pace.

    producer -> orders -> [Validate] -> validated -> [Enrich] -> enriched -> [Store]

Validate and Enrich consume their input: the node hands them its messages one at a time, and a
handler that returns acknowledges its message (one that raises gives it back, to come again).
Store pulls from `enriched` when asked (`drain`), at whatever pace its caller sets.

Every channel holds at most CAPACITY messages, delivered or not. A stage whose output is full
waits up to WAIT_MS for room before it gives its message back, so when Store falls behind,
Enrich waits, `validated` fills, Validate waits, `orders` fills, and the producer's send is
refused with `channel_full` (HTTP 429): the backpressure reaches the first stage, and nothing
is lost on the way. Deploy the module as `seda`, ask each stage `start`, then send orders to
the channel `orders` (`POST /api/v1/channels/{tenant}/{namespace}/orders/send`).
"""

from plexspaces import actor, handler, host, state

CAPACITY = 4
WAIT_MS = 2_000
# A message a stage held when its node died is delivered again after this long.
VISIBILITY_MS = 5_000
PRICES = {"apple": 3, "pear": 5}


def _queues(*names: str) -> None:
    for name in names:
        host.channels.create(name, "queue", CAPACITY, VISIBILITY_MS)


@actor
class Validate:
    passed: int = state(default=0)
    rejected: int = state(default=0)

    @handler("start")
    def start(self) -> dict:
        _queues("orders", "validated")
        host.channels.consume("orders", "order")
        return {"stage": "validate", "consumes": "orders"}

    @handler("order")
    def order(self, data: dict, channel: str, receipt: str, attempt: int, subscription: str | None = None) -> dict:
        qty = data.get("qty") if isinstance(data, dict) else None
        if not isinstance(qty, int) or qty <= 0 or data.get("sku") not in PRICES:
            # A bad order is acknowledged and counted, not retried.
            self.rejected += 1
            return {"rejected": data}
        host.channels.send("validated", data, timeout_ms=WAIT_MS)
        self.passed += 1
        return {"passed": data.get("id")}

    @handler("stats")
    def stats(self) -> dict:
        return {"passed": self.passed, "rejected": self.rejected}


@actor
class Enrich:
    enriched: int = state(default=0)

    @handler("start")
    def start(self) -> dict:
        _queues("validated", "enriched")
        host.channels.consume("validated", "order")
        return {"stage": "enrich", "consumes": "validated"}

    @handler("order")
    def order(self, data: dict, channel: str, receipt: str, attempt: int, subscription: str | None = None) -> dict:
        priced = {**data, "total": data["qty"] * PRICES[data["sku"]]}
        host.channels.send("enriched", priced, timeout_ms=WAIT_MS)
        self.enriched += 1
        return {"total": priced["total"]}

    @handler("stats")
    def stats(self) -> dict:
        return {"enriched": self.enriched}


@actor
class Store:
    orders: list = state(default_factory=list)
    revenue: int = state(default=0)
    unacked: list = state(default_factory=list)

    @handler("start")
    def start(self) -> dict:
        _queues("enriched")
        return {"stage": "store", "pulls": "enriched"}

    @handler("drain")
    def drain(self, max: int = 10) -> dict:
        # What the last drain stored is committed now: acknowledge it. (Acknowledging in the
        # same handler would lose those orders if the node died before the state was saved.)
        for receipt in self.unacked:
            host.channels.ack("enriched", receipt)
        self.unacked = []
        stored = 0
        for delivery in host.channels.receive("enriched", max=max):
            order = delivery["data"]
            # Delivered again after a crash or a timeout? Stored once.
            if order["id"] not in self.orders:
                self.orders.append(order["id"])
                self.revenue += order["total"]
            self.unacked.append(delivery["receipt"])
            stored += 1
        return {"stored": stored, "orders": len(self.orders), "revenue": self.revenue}

    @handler("stats")
    def stats(self) -> dict:
        return {"orders": self.orders, "revenue": self.revenue}
