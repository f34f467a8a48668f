/**
 * What the protocol tests share: the vCPU the ledger's leases really hold (read from the table itself, not the
 * counters), and a run of `test` once per call a function makes, with something else happening just before that call.
 */
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { LEDGER_KEY_PREFIX } from '../../functions/ledger';
import type { MotoDynamo } from '../support/moto';

/** Σ of the leases on the ledger rows: what the limiter's counters must agree with. */
export async function leasedVcpu(moto: MotoDynamo, tableName: string): Promise<number> {
  const { Items = [] } = await moto.ddb.send(new ScanCommand({ TableName: tableName, ConsistentRead: true }));
  return Items.filter((i) => String(i.pk).startsWith(LEDGER_KEY_PREFIX) && i.lease).reduce((n, i) => n + Number(i.lease.vcpu), 0);
}

/**
 * Runs `scenario(k)` for k = 0, 1, … until the interleaving point k lies past the function's last call: each run
 * builds its own world and injects the other actor before the function's k-th call. `scenario` answers whether its
 * injection happened (false once k is past the end).
 */
export async function beforeEachCall(scenario: (k: number) => Promise<boolean>, limit = 60): Promise<number> {
  for (let k = 0; k < limit; k++) if (!(await scenario(k))) return k;
  throw new Error(`the function made more than ${limit} calls: raise the limit`);
}
