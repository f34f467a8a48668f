/**
 * How long a dispatcher run may last, and what must outlast it: the intake queue's visibility timeout and the grace
 * before a batch without an execution is given back. Here, free of cdktf, so the intake and the functions'
 * constructs read one definition.
 */

/** A dispatcher run stops admitting after this long; its Lambda timeout leaves room to finish the batch. */
export const DISPATCHER_MAX_RUN_SECONDS = 240;
export const DISPATCHER_TIMEOUT_SECONDS = 300;

/**
 * A batch whose execution does not exist is given back (by the janitor, or the next dispatcher run) only once the run
 * that admitted it can no longer start it: that run's Lambda timeout has passed since the admission (its SDK retries
 * StartExecution until then), and a margin for the last call it sent to land and show (DescribeExecution is
 * eventually consistent). Shorter, a late StartExecution starts an execution whose leases were already given back.
 */
export const START_GRACE_SECONDS = DISPATCHER_TIMEOUT_SECONDS + 30;

/**
 * How long a message a dispatcher run received stays invisible: past that run's Lambda timeout, so it never comes
 * back while the run that holds it may still admit, start or delete it (the same run would otherwise meet it again).
 * A run that dies holding messages leaves them invisible that long before another run takes them.
 */
export const INTAKE_VISIBILITY_TIMEOUT_SECONDS = DISPATCHER_TIMEOUT_SECONDS + 30;
