/**
 * Why a reconcile (or a `map` call) produced no answer: `retry` (transient, retried with
 * exponential backoff) or `permanent` (not retried until the object changes). Throw one from
 * `reconcile` or `map`; any other thrown value is reported as a `retry` with its message (like a
 * panic in a Rust plugin, it counts as a transient failure).
 */

import type { WitReconcileError } from "./wit.js";

export class ReconcileError extends Error {
  /** Whether the host retries it. */
  readonly kind: "retry" | "permanent";

  constructor(kind: "retry" | "permanent", message: string) {
    super(message);
    this.name = "ReconcileError";
    this.kind = kind;
  }

  /** A transient failure, retried with backoff: `throw ReconcileError.retry("backend not ready")`. */
  static retry(message: string): ReconcileError {
    return new ReconcileError("retry", message);
  }

  /** A failure only a change of the object can fix (an invalid spec, a missing field). */
  static permanent(message: string): ReconcileError {
    return new ReconcileError("permanent", message);
  }

  /** Whether the host retries it. */
  get isRetry(): boolean {
    return this.kind === "retry";
  }

  /** The same error with `context: ` before its message. */
  context(context: string): ReconcileError {
    return new ReconcileError(this.kind, `${context}: ${this.message}`);
  }
}

/** `throw retry("...")`: shorthand for `ReconcileError.retry`. */
export function retry(message: string): ReconcileError {
  return ReconcileError.retry(message);
}

/** `throw permanent("...")`: shorthand for `ReconcileError.permanent`. */
export function permanent(message: string): ReconcileError {
  return ReconcileError.permanent(message);
}

/**
 * The contract's error for anything thrown. componentize-js turns a value thrown from an export
 * returning `result<_, reconcile-error>` into the `err` case when it carries the variant as
 * `payload`; any other thrown value would trap the instance without a message.
 * @internal
 */
export function toWitError(thrown: unknown): WitReconcileError {
  if (thrown instanceof ReconcileError) return { tag: thrown.kind, val: thrown.message };
  if (thrown instanceof Error) return { tag: "retry", val: `${thrown.name}: ${thrown.message}` };
  return { tag: "retry", val: `thrown: ${String(thrown)}` };
}

/**
 * What the export throws for componentize-js: an Error whose `payload` is the contract's variant.
 * @internal
 */
export class WitFailure extends Error {
  readonly payload: WitReconcileError;

  constructor(payload: WitReconcileError) {
    super(payload.val);
    this.payload = payload;
  }
}
