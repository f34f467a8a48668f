/**
 * Redrives failed jobs of a stage: `npm run redrive -- --stage prod --job <jobId> [--job <jobId> …]`.
 * Uses your AWS credentials (the stage's account); each failed job goes back to the intake queue as its
 * next attempt. Jobs that are not failed are left alone and listed.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetQueueUrlCommand, SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { parseArgs } from 'node:util';
import { ENVIRONMENT_INPUTS, validateEnvironment } from '../environments';
import { redriveFailedJobs } from '../functions/ledger';
import { intakeQueueName } from '../modules/intake';
import { stateTableName } from '../modules/limiter';

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { stage: { type: 'string' }, job: { type: 'string', multiple: true } } });
  const stages = Object.keys(ENVIRONMENT_INPUTS);
  if (!values.stage || !stages.includes(values.stage)) throw new Error(`--stage must be one of ${stages.join(', ')}`);
  if (!values.job?.length) throw new Error('name the jobs to redrive with --job <jobId> (repeatable)');
  const config = validateEnvironment(values.stage, ENVIRONMENT_INPUTS[values.stage as keyof typeof ENVIRONMENT_INPUTS]);
  const region = config.account.region;
  const sqs = new SQSClient({ region });
  const ddb = DynamoDBDocumentClient.from(new DynamoDBClient({ region }));
  const { QueueUrl } = await sqs.send(new GetQueueUrlCommand({ QueueName: intakeQueueName(config.namePrefix), QueueOwnerAWSAccountId: config.account.id }));
  const outcome = await redriveFailedJobs({ ddb, sqs }, { tableName: stateTableName(config.namePrefix), queueUrl: QueueUrl! }, values.job, Date.now());
  for (const jobId of outcome.redriven) console.log(`redriven  ${jobId}`);
  for (const { jobId, status } of outcome.skipped) console.log(`skipped   ${jobId} (${status}: only failed jobs are redriven)`);
}

main().catch((error: Error) => {
  console.error(`redrive: ${error.message}`);
  process.exit(1);
});
