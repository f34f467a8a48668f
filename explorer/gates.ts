/**
 * Actors and gates. An actor is one run of real sluice code (a dispatcher or janitor invocation, the capacity reader,
 * configure-pool, a `sluice` command) or one Step Functions execution of the synthesized state machine. Every AWS
 * call an actor makes stops at a gate; it goes on only when the scheduler releases that gate, with a fault or
 * without. Between two releases nothing else runs, so the order of releases is the interleaving, and a schedule is
 * the list of releases (and of the other events: time passing, uploads, operator commands).
 */
import { AwsError } from '../twin/engines/errors';
import { standIn, type AwsClient, type AwsCommand } from '../functions/runtime';

export type ActorKind = 'dispatcher' | 'janitor' | 'capacity' | 'configure-pool' | 'operator' | 'execution' | 'finisher';

/**
 * What may happen at a call:
 * - `none`: the call runs and answers;
 * - `crash-before`: the actor dies before sending it (its process is gone: nothing after runs);
 * - `crash-after`: the call commits, then the actor dies before it hears the answer;
 * - `error-after`: the call commits, and the caller is told it failed (a timeout, a 5xx, the SDK's retries spent);
 * - `transient`: the call is refused without effect (a throttle, a transaction conflict).
 * Step Functions executions do not crash (they are aborted, an event of their own).
 */
export type Fault = 'none' | 'crash-before' | 'crash-after' | 'error-after' | 'transient';

export const LAMBDA_FAULTS: readonly Fault[] = ['none', 'crash-before', 'crash-after', 'error-after', 'transient'];
export const EXECUTION_FAULTS: readonly Fault[] = ['none', 'error-after', 'transient'];

/** How a RunTask the scheduler releases turns out: the task runs and exits 0, 75 or 65, or RunTask refuses it. */
export type RunTaskOutcome = 'exit0' | 'exit75' | 'exit65' | 'capacity' | 'vcpu-limit' | 'throttled';
export const RUN_TASK_OUTCOMES: readonly RunTaskOutcome[] = ['exit0', 'exit75', 'exit65', 'capacity', 'vcpu-limit', 'throttled'];

export type Release = Fault | RunTaskOutcome;

/** The actor's process is gone: what it would do next never happens. */
export class ActorCrashed extends Error {
  constructor(label: string, why: string) {
    super(`${label} ${why}`);
    this.name = 'ActorCrashed';
  }
}

export interface Actor {
  readonly id: number;
  readonly kind: ActorKind;
  /** Stable across replays of one schedule: the kind and its ordinal, or the execution's name. */
  readonly label: string;
  /** Virtual epoch ms at which a Lambda's timeout kills it. */
  readonly deadline?: number;
  readonly startedAt: number;
  state: 'running' | 'done' | 'failed' | 'crashed';
  calls: number;
  /** The error it ended with, if it threw on its own. */
  error?: unknown;
}

export interface Gate {
  readonly id: number;
  readonly actor: Actor;
  /** Stable across replays: `<actor label>/<call index>:<operation>`. */
  readonly key: string;
  readonly service: string;
  readonly operation: string;
  readonly input: unknown;
  /** What the scheduler may choose for this call. */
  readonly releases: readonly Release[];
  /** Runs the call with the chosen fault or outcome; the actor's promise settles as the call would. */
  readonly release: (how: Release) => void;
  /** The call will never run (its actor died or its execution ended): the actor's promise rejects. */
  readonly cancel: (why: string) => void;
}

/** The error a refused call gets, named as the caller would see it. */
export function transientError(service: string, operation: string): AwsError {
  switch (service) {
    case 'dynamodb':
      if (operation === 'TransactWriteItems') {
        return Object.assign(
          new AwsError(
            'TransactionCanceledException',
            'Transaction cancelled, please refer cancellation reasons for specific reasons [TransactionConflict]',
            false,
          ),
          {
            CancellationReasons: [{ Code: 'TransactionConflict', Message: 'Transaction is ongoing for the item' }],
          },
        );
      }
      // A plain write of an item a transaction holds is refused so (and the SDK does not retry it); reads are throttled.
      return ['UpdateItem', 'PutItem', 'DeleteItem'].includes(operation)
        ? new AwsError('TransactionConflictException', 'Transaction is ongoing for the item', false)
        : new AwsError('ProvisionedThroughputExceededException', 'The level of configured provisioned throughput for the table was exceeded.');
    case 'sfn':
      return new AwsError('ThrottlingException', 'Rate exceeded');
    case 'lambda':
      return new AwsError('TooManyRequestsException', 'Rate exceeded');
    default:
      return new AwsError('ServiceUnavailable', `${service} ${operation}: service unavailable`);
  }
}

/** The error a call that committed anyway answers with: the answer was lost (a timeout, a 5xx after the work was done). */
export function lostAnswerError(service: string, operation: string): AwsError {
  return new AwsError(
    service === 'dynamodb' ? 'InternalServerError' : 'ServiceUnavailable',
    `${service} ${operation}: the answer was lost after the call was made`,
  );
}

/** Step Functions' integrations name service errors `<Service>.<Exception>`: what its Retry and Catch match. */
export function integrationError(service: string, operation: string, error: AwsError): AwsError {
  const prefix = service === 'dynamodb' ? (operation === 'TransactWriteItems' ? 'DynamoDb' : 'DynamoDB') : service === 'sqs' ? 'SQS' : 'Lambda';
  const name =
    service === 'sqs' ? 'AmazonSQSException' : error.name.endsWith('Exception') || error.name.endsWith('Error') ? error.name : `${error.name}Exception`;
  return new AwsError(`${prefix}.${name === 'InternalServerError' ? 'InternalServerErrorException' : name}`, error.message);
}

/** A client whose every call waits at a gate of `actor`. */
export function gatedClient(
  open: (actor: Actor, service: string, command: { constructor: { name: string }; input: unknown }, run: () => Promise<unknown>) => Promise<unknown>,
  actor: Actor,
  service: string,
  client: AwsClient,
): AwsClient {
  return standIn({ send: (command: AwsCommand) => open(actor, service, command, () => client.send(command)) });
}
