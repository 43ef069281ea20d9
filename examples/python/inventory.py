"""The inventory the order_service example asks: stock per SKU, reserved as orders arrive."""
from plexspaces import actor, state, handler


@actor
class InventoryActor:
    stock: dict = state(default_factory=lambda: {"sku-1": 3, "sku-2": 0})

    @handler("check_stock")
    def check_stock(self, sku: str) -> dict:
        available = self.stock.get(sku, 0) > 0
        if available:
            self.stock[sku] -= 1
        return {"sku": sku, "available": available, "left": self.stock.get(sku, 0)}

    @handler("restock")
    def restock(self, sku: str, count: int = 1) -> dict:
        self.stock[sku] = self.stock.get(sku, 0) + count
        return {"sku": sku, "left": self.stock[sku]}
