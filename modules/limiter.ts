import { DynamodbTable } from '@cdktf/provider-aws/lib/dynamodb-table';
import { Construct } from 'constructs';
import { TTL_ATTRIBUTE } from '../functions/ledger';

export interface LimiterProps {
  readonly namePrefix: string;
  /** Lifts deletion protection, so `terraform destroy` can delete the table and the ledger with it. */
  readonly allowDestroy: boolean;
}

export function stateTableName(namePrefix: string): string {
  return `${namePrefix}-state`;
}

/**
 * One table per stage for the limiter's pool item (`pk = POOL`) and the ledger rows (`pk = JOB#<id>`).
 * On demand (bursts are the point), point-in-time recovery, TTL on ledger rows, deletion protected unless the
 * stage allows destroy.
 */
export class Limiter extends Construct {
  readonly tableName: string;
  readonly tableArn: string;

  constructor(scope: Construct, id: string, props: LimiterProps) {
    super(scope, id);
    const table = new DynamodbTable(this, 'table', {
      name: stateTableName(props.namePrefix),
      billingMode: 'PAY_PER_REQUEST',
      hashKey: 'pk',
      attribute: [{ name: 'pk', type: 'S' }],
      pointInTimeRecovery: { enabled: true },
      ttl: { attributeName: TTL_ATTRIBUTE, enabled: true },
      deletionProtectionEnabled: !props.allowDestroy,
    });
    this.tableName = table.name;
    this.tableArn = table.arn;
  }
}

/** Restricts DynamoDB item actions to the items whose partition key matches one of `keys` (wildcards allowed). */
export function leadingKeys(keys: readonly string[]) {
  return { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [...keys] } };
}
