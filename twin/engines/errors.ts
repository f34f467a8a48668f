/** An error with an AWS error name: what a Task state's `ErrorEquals` matches (aws-local-stepfunctions matches `error.name`). */
export class AwsError extends Error {
  constructor(
    name: string,
    message: string,
    readonly retryable = true,
  ) {
    super(message);
    this.name = name;
  }
  /** Read by aws-local-stepfunctions: false keeps a Retry from matching. */
  get isRetryable(): boolean {
    return this.retryable;
  }
}
