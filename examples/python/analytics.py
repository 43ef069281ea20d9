"""The analytics the order_service example tells: it counts the orders it hears of."""
from plexspaces import actor, state, handler, host


@actor
class AnalyticsActor:
    orders: list = state(default_factory=list)

    @handler("order_placed")
    def order_placed(self, **order) -> None:
        self.orders.append(order.get("id"))
        print(f"order placed: {order.get('id')}")

    @handler("report")
    def report(self) -> dict:
        host.log(f"report asked by {host.get_actor_id()}", level="debug")
        return {"orders": self.orders, "count": len(self.orders)}
