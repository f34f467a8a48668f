import { Construct } from 'constructs';
import type { EnvironmentConfig } from '../environments';
import { finisherEnvironment } from '../functions/environment';
import { MAX_EXECUTION_ATTEMPTS } from '../environments/function-settings';
import { functionNameOf } from '../environments/names';
import { leadingKeys, STATE_ITEMS, type StateTable } from './state-table';
import { oneOrList, type PolicyStatement } from './iam';
import { NodeFunction } from './node-function';
import type { Intake } from './intake';
import type { Observability } from './observability';

interface FinisherProps {
  readonly config: EnvironmentConfig;
  /** The queues its objects go back to when their task did not start: the stage's own, or each route's. */
  readonly intake: Intake;
  /** The ledger rows, released counters and pool it writes, and the batch records it reads each task's list from. */
  readonly stateTable: StateTable;
  readonly observability: Observability;
}

/** Long enough for a task of the most objects: a read of its list, then a write (or a requeue and a write) per object. */
const FINISHER_TIMEOUT_SECONDS = 60;

/**
 * Who ends a packed task (functions/packing.ts): the state machine of a stage that packs invokes it, waiting for its
 * answer, once a task ran, failed or did not start. It writes each of the task's objects' results to their rows and
 * gives their leases back, sending objects that did not run back to their queue first. Only a stage that packs has one.
 */
export class Finisher extends Construct {
  readonly finisher: NodeFunction;

  constructor(scope: Construct, id: string, props: FinisherProps) {
    super(scope, id);
    const { config } = props;
    const functionName = functionNameOf(config.namePrefix, 'finish-task');
    this.finisher = new NodeFunction(this, 'finish-task', {
      config,
      functionName,
      description: "Ends a packed task: each object's result on its row, every lease given back, objects that did not run requeued",
      entry: 'functions/finish-task.ts',
      timeoutSeconds: FINISHER_TIMEOUT_SECONDS,
      environment: finisherEnvironment({
        tableName: props.stateTable.tableName,
        batchesTableName: props.stateTable.batchesTableName,
        queueUrl: props.intake.queueUrl,
        capacityRetryDelaySeconds: config.capacity.capacityRetryDelaySeconds,
        maxExecutionAttempts: MAX_EXECUTION_ATTEMPTS,
      }),
      statements: finisherStatements(props),
    });
    props.observability.functionErrors(
      'finish-task',
      functionName,
      ' The state machine retries it; a task it could not end keeps its leases until the janitor settles its batch.',
    );
  }
}

/** Its role: read a batch's list and its objects' rows, write results and releases (and a hold, a class short of capacity), requeue. */
function finisherStatements(props: FinisherProps): PolicyStatement[] {
  const { pool, released, jobs } = STATE_ITEMS;
  return [
    { Sid: 'ReadTheTaskList', Effect: 'Allow', Action: 'dynamodb:GetItem', Resource: props.stateTable.batchesTableArn },
    // Its objects' rows, to see which leases are still this execution's (readLedgerRows).
    { Sid: 'ReadTheObjectRows', Effect: 'Allow', Action: 'dynamodb:BatchGetItem', Resource: props.stateTable.tableArn, Condition: leadingKeys([jobs]) },
    // Each object's row with its lease, the released counter and POOL's hold, in one transaction or alone: a
    // transaction's Update items are allowed by UpdateItem (DynamoDB developer guide, transaction-apis-iam).
    {
      Sid: 'ResultsAndReleases',
      Effect: 'Allow',
      Action: 'dynamodb:UpdateItem',
      Resource: props.stateTable.tableArn,
      Condition: leadingKeys([pool, released, jobs]),
    },
    { Sid: 'BackToTheQueue', Effect: 'Allow', Action: 'sqs:SendMessage', Resource: oneOrList(props.intake.queueArns) },
  ];
}
