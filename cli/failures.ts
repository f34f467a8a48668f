/**
 * `sluice failures`: failed jobs since a time, grouped by error with counts and examples, from the state table's
 * sparse failed-by-day index (one Query per UTC day, never a scan); and what the dead-letter queues hold, by reason.
 */
import { ReceiveMessageCommand, type Message } from '@aws-sdk/client-sqs';
import { QueryCommand } from '@aws-sdk/lib-dynamodb';
import type { EnvironmentConfig } from '../environments';
import { FAILED_INDEX, failedDayOf, readLedgerRows } from '../functions/ledger';
import { changeVisibilityInBatches } from '../functions/queue-batches';
import { isMissingTable, notDeployed, queueDepths, queueUrl, stageNames, type StageClients } from './stage';

/** A failed job as the index holds it. */
interface FailedJob {
  readonly jobId: string;
  readonly bucket: string;
  readonly objectKey: string;
  readonly error: string;
  readonly finishedAt: string;
}

export async function queryFailedJobs(clients: StageClients, config: EnvironmentConfig, since: number, now: number, error?: string): Promise<FailedJob[]> {
  const table = stageNames(config).stateTable;
  const sinceIso = new Date(since).toISOString();
  const jobs: FailedJob[] = [];
  for (let day = Date.parse(failedDayOf(sinceIso)); day <= now; day += 86_400_000) {
    let start: Record<string, unknown> | undefined;
    do {
      let page;
      try {
        page = await clients.ddb.send(
          new QueryCommand({
            TableName: table,
            IndexName: FAILED_INDEX.name,
            KeyConditionExpression: `${FAILED_INDEX.hashKey} = :day AND ${FAILED_INDEX.rangeKey} >= :since`,
            ...(error ? { FilterExpression: '#error = :error', ExpressionAttributeNames: { '#error': 'error' } } : {}),
            ExpressionAttributeValues: { ':day': failedDayOf(new Date(day).toISOString()), ':since': sinceIso, ...(error ? { ':error': error } : {}) },
            ExclusiveStartKey: start,
          }),
        );
      } catch (e) {
        if (isMissingTable(e)) throw notDeployed(config, `table ${table}`);
        // A table applied before this version has no such index: DynamoDB says so as a ValidationException.
        if ((e as Error).name === 'ValidationException' && /index/i.test((e as Error).message))
          throw notDeployed(config, `index ${FAILED_INDEX.name} on ${table} (apply this version)`);
        throw e;
      }
      jobs.push(...((page.Items ?? []) as FailedJob[]));
      start = page.LastEvaluatedKey;
    } while (start);
  }
  return jobs;
}

interface FailureGroup {
  readonly error: string;
  readonly count: number;
  /** The newest few, with the cause read from their rows. */
  readonly examples: Array<FailedJob & { readonly cause?: string }>;
}

interface DeadLetterGroup {
  readonly reason: string;
  readonly count: number;
  readonly example: string;
}

interface DeadLetterQueueReport {
  readonly queue: string;
  /** All the queue holds (approximate, as SQS counts). */
  readonly depth: number;
  /** The messages looked at (up to 10 per receive; they stay in the queue), grouped by reason. */
  readonly sampled: number;
  readonly reasons: DeadLetterGroup[];
}

export interface FailuresReport {
  readonly stage: string;
  readonly since: string;
  readonly failedJobs: number;
  readonly groups: FailureGroup[];
  readonly deadLetters: { readonly intake: DeadLetterQueueReport; readonly rule: DeadLetterQueueReport };
}

/** Why a message is in a dead-letter queue: the dispatcher's reason (poison), EventBridge's error, or SQS's redrive. */
export function deadLetterReason(message: Message): string {
  const attribute = (name: string) => message.MessageAttributes?.[name]?.StringValue;
  if (attribute('reason')) return attribute('reason')!;
  if (attribute('ERROR_CODE'))
    return `EventBridge could not deliver it: ${attribute('ERROR_CODE')}${attribute('ERROR_MESSAGE') ? ` (${attribute('ERROR_MESSAGE')})` : ''}`;
  return 'received too often without being started (StartExecution kept failing, or the dispatcher kept dying)';
}

/**
 * Looks at up to `limit` messages without taking them: received (long polling, so every SQS server is asked) with a
 * short visibility timeout, then made visible again at once.
 */
export async function peekDeadLetters(clients: StageClients, url: string, limit = 50): Promise<Message[]> {
  const seen = new Map<string, Message>();
  while (seen.size < limit) {
    const { Messages = [] } = await clients.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: url,
        MaxNumberOfMessages: Math.min(10, limit - seen.size),
        VisibilityTimeout: 30,
        MessageAttributeNames: ['All'],
        WaitTimeSeconds: 1,
      }),
    );
    if (Messages.length === 0) break;
    for (const m of Messages) seen.set(m.MessageId!, m);
  }
  const messages = [...seen.values()];
  await changeVisibilityInBatches(clients.sqs, url, messages, 0);
  return messages;
}

async function deadLetterReport(clients: StageClients, config: EnvironmentConfig, name: string): Promise<DeadLetterQueueReport> {
  const url = await queueUrl(clients, config, name);
  const messages = await peekDeadLetters(clients, url);
  const groups = new Map<string, DeadLetterGroup>();
  for (const message of messages) {
    const reason = deadLetterReason(message);
    const group = groups.get(reason);
    groups.set(reason, { reason, count: (group?.count ?? 0) + 1, example: group?.example ?? (message.Body ?? '').slice(0, 200) });
  }
  return {
    queue: name,
    depth: Math.max((await queueDepths(clients, url)).waiting, messages.length),
    sampled: messages.length,
    reasons: [...groups.values()].sort((a, b) => b.count - a.count),
  };
}

export async function readFailures(
  clients: StageClients,
  config: EnvironmentConfig,
  options: { since: number; error?: string; examples: number },
  now: number,
): Promise<FailuresReport> {
  const names = stageNames(config);
  const jobs = await queryFailedJobs(clients, config, options.since, now, options.error);
  const byError = new Map<string, FailedJob[]>();
  for (const job of jobs) byError.set(job.error, [...(byError.get(job.error) ?? []), job]);
  const newestFirst = (a: FailedJob, b: FailedJob) => b.finishedAt.localeCompare(a.finishedAt);
  const examples = [...byError.values()].flatMap((group) => [...group].sort(newestFirst).slice(0, options.examples));
  const rows = await readLedgerRows(
    clients.ddb,
    names.stateTable,
    examples.map((e) => e.jobId),
  );
  const groups = [...byError.entries()]
    .map(([error, group]) => ({
      error,
      count: group.length,
      examples: [...group]
        .sort(newestFirst)
        .slice(0, options.examples)
        .map((job) => ({ ...job, cause: rows.get(job.jobId)?.cause })),
    }))
    .sort((a, b) => b.count - a.count || a.error.localeCompare(b.error));
  return {
    stage: config.stage,
    since: new Date(options.since).toISOString(),
    failedJobs: jobs.length,
    groups,
    deadLetters: {
      intake: await deadLetterReport(clients, config, names.intakeDeadLetterQueue),
      rule: await deadLetterReport(clients, config, names.ruleDeadLetterQueue),
    },
  };
}

const clip = (text: string, length: number) => (text.length > length ? `${text.slice(0, length - 1)}…` : text);

export function formatFailures(report: FailuresReport): string {
  const lines = [`${report.failedJobs} failed job${report.failedJobs === 1 ? '' : 's'} in ${report.stage} since ${report.since}`];
  for (const group of report.groups) {
    lines.push('', `${group.count} × ${group.error}`);
    for (const job of group.examples) {
      lines.push(`  ${job.finishedAt}  ${job.jobId}  s3://${job.bucket}/${job.objectKey}`);
      if (job.cause) lines.push(`    ${clip(job.cause.replace(/\s+/g, ' '), 160)}`);
    }
  }
  for (const dlq of [report.deadLetters.intake, report.deadLetters.rule]) {
    lines.push('', `${dlq.depth} message${dlq.depth === 1 ? '' : 's'} in ${dlq.queue}${dlq.sampled < dlq.depth ? ` (${dlq.sampled} looked at)` : ''}`);
    for (const group of dlq.reasons) lines.push(`  ${group.count} × ${group.reason}`, `    ${clip(group.example.replace(/\s+/g, ' '), 160)}`);
  }
  return lines.join('\n');
}
