// What the SDK's tests share.
import assert from "node:assert/strict";

import { HostError } from "@plexspaces/sdk";

/** The code of the HostError a handler let escape (it arrives as `actor_error`). */
export function refused(call: () => unknown): string {
  try {
    call();
  } catch (error) {
    assert.ok(error instanceof HostError, `a HostError, not ${error}`);
    assert.deepEqual([error.code, error.errorType], ["actor_error", "HostError"], error.message);
    return error.detail.split(":", 1)[0]!;
  }
  assert.fail("expected the handler to fail");
}
