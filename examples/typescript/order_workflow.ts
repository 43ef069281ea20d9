// A durable workflow in TypeScript: a crash in the middle resumes it, and steps that finished are
// not run again (the TypeScript twin of examples/python/order_workflow_steps.py).
import { host, WorkflowActor } from "@plexspaces/sdk";

interface Order {
  orderId: string;
  status: string;
  stepsCompleted: string[];
}

export class OrderFulfillment extends WorkflowActor<Order> {
  static override facets = ["durability"];

  getDefaultState(): Order {
    return { orderId: "", status: "pending", stepsCompleted: [] };
  }

  run(input: { order_id: string; amount: number }) {
    this.state.orderId = input.order_id;

    // Each step runs once; on replay its recorded result is returned instead.
    const charge = host.step("charge", () =>
      host.ask("payments", "charge", { order_id: this.state.orderId, amount: input.amount }, 5000),
    );
    this.state.stepsCompleted.push("payment");
    this.state.status = "charged";

    // A durable timer: survives a restart of the node.
    host.sleep(2000);

    // Wait for a person to approve, or cancel.
    const decision = host.waitSignal("approve", 60_000);
    if (this.state.status === "cancelled" || !decision) {
      host.step("refund", () => host.ask("payments", "refund", { order_id: this.state.orderId, charge }, 5000));
      return { status: "cancelled", order_id: this.state.orderId };
    }

    host.step("ship", () => host.tell("shipping", "ship", { order_id: this.state.orderId }));
    this.state.stepsCompleted.push("shipment");
    this.state.status = "completed";
    return { status: "completed", order_id: this.state.orderId };
  }

  onCancel() {
    this.state.status = "cancelled";
  }

  queryStatus() {
    return { order_id: this.state.orderId, status: this.state.status, steps: this.state.stepsCompleted };
  }
}
