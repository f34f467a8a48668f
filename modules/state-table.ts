import { DynamodbTable } from '@cdktf/provider-aws/lib/dynamodb-table';
import { Construct } from 'constructs';
import type { EnvironmentConfig } from '../environments';
import { FAILED_INDEX, LEDGER_KEY_PREFIX, TTL_ATTRIBUTE } from '../functions/ledger';
import { POOL_KEY, RELEASED_KEY_PREFIX } from '../functions/limiter';
import { batchesTableName, stateTableName } from '../environments/names';
import type { BatchRecord } from '../functions/batches';

/** The batches table's key: a batch record is found by its execution's name. */
export const BATCHES_KEY = 'execution' satisfies keyof BatchRecord;

interface StateTableProps {
  /** Its name prefix; `allowDestroy` lifts deletion protection, so `terraform destroy` can delete the tables and the ledger with them. */
  readonly config: EnvironmentConfig;
}

/**
 * The limiter's and the ledger's tables. The state table holds the pool's counters (`POOL`, `RELEASED#<n>`) and a
 * row per job (`JOB#<id>`, its lease on it while it holds vCPU): on demand (bursts are the point), point-in-time
 * recovery, TTL on ledger rows, deletion protected unless the stage allows destroy; its sparse index `failed-by-day`
 * (functions/ledger.ts: FAILED_INDEX) holds failed jobs only. The batches table holds one
 * record per admitted batch until the janitor settles it: the leases that may still be held, without a scan of the
 * ledger. Its items live minutes to hours; nothing in it needs restoring (PITR off), and it is small.
 */
export class StateTable extends Construct {
  readonly tableName: string;
  readonly tableArn: string;
  readonly batchesTableName: string;
  readonly batchesTableArn: string;

  constructor(scope: Construct, id: string, props: StateTableProps) {
    super(scope, id);
    const table = new DynamodbTable(this, 'table', {
      name: stateTableName(props.config.namePrefix),
      billingMode: 'PAY_PER_REQUEST',
      hashKey: 'pk',
      attribute: [
        { name: 'pk', type: 'S' },
        { name: FAILED_INDEX.hashKey, type: 'S' },
        { name: FAILED_INDEX.rangeKey, type: 'S' },
      ],
      globalSecondaryIndex: [
        {
          name: FAILED_INDEX.name,
          hashKey: FAILED_INDEX.hashKey,
          rangeKey: FAILED_INDEX.rangeKey,
          projectionType: 'INCLUDE',
          nonKeyAttributes: [...FAILED_INDEX.projected],
        },
      ],
      pointInTimeRecovery: { enabled: true },
      ttl: { attributeName: TTL_ATTRIBUTE, enabled: true },
      deletionProtectionEnabled: !props.config.allowDestroy,
    });
    const batches = new DynamodbTable(this, 'batches', {
      name: batchesTableName(props.config.namePrefix),
      billingMode: 'PAY_PER_REQUEST',
      hashKey: BATCHES_KEY,
      attribute: [{ name: BATCHES_KEY, type: 'S' }],
      deletionProtectionEnabled: !props.config.allowDestroy,
    });
    this.tableName = table.name;
    this.tableArn = table.arn;
    this.batchesTableName = batches.name;
    this.batchesTableArn = batches.arn;
  }
}

/** Restricts DynamoDB item actions to the items whose partition key matches one of `keys` (wildcards allowed). */
export function leadingKeys(keys: readonly string[]) {
  return { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [...keys] } };
}

/** The state table's item keys, by who may touch them. */
export const STATE_ITEMS = { pool: POOL_KEY.pk, released: `${RELEASED_KEY_PREFIX}*`, jobs: `${LEDGER_KEY_PREFIX}*` } as const;
