/**
 * What a `sluice` command knows about a stage before it calls AWS: its configuration (environments/), and the names
 * of its resources, built by the same functions the stack names them with — never typed by hand — and clients for
 * its own Region (not AWS_REGION: a stage lives in one) with the standard credential chain (AWS_PROFILE,
 * environment, SSO, instance role; AWS_ENDPOINT_URL too).
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { SFNClient } from '@aws-sdk/client-sfn';
import { GetQueueAttributesCommand, GetQueueUrlCommand, SQSClient } from '@aws-sdk/client-sqs';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { loadEnvironments, type EnvironmentConfig } from '../environments';
import { routeTakesKey } from '../functions/routes';
import {
  batchesTableName,
  intakeDeadLetterQueueName,
  intakeQueueName,
  routeQueueName,
  ruleDeadLetterQueueName,
  stageBucketName,
  stateMachineArnOf,
  stateTableName,
} from '../environments/names';

/** An error a user will meet, with the exit code that tells scripts which kind it is. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}
/** Exit codes: 0 done, 1 AWS said no or the stage is not deployed, 2 bad usage, 3 nothing found, 4 timed out (drain). */
export const EXIT = { failed: 1, usage: 2, notFound: 3, timedOut: 4 } as const;

interface StageNames {
  readonly stateTable: string;
  readonly batchesTable: string;
  readonly intakeQueue: string;
  readonly intakeDeadLetterQueue: string;
  readonly ruleDeadLetterQueue: string;
  readonly stateMachineArn: string;
  readonly bucket: string;
}

export function stageNames(config: EnvironmentConfig): StageNames {
  const prefix = config.namePrefix;
  return {
    stateTable: stateTableName(prefix),
    batchesTable: batchesTableName(prefix),
    intakeQueue: intakeQueueName(prefix),
    intakeDeadLetterQueue: intakeDeadLetterQueueName(prefix),
    ruleDeadLetterQueue: ruleDeadLetterQueueName(prefix),
    stateMachineArn: stateMachineArnOf(config),
    bucket: stageBucketName(config),
  };
}

export function stageConfig(stage: string | undefined): EnvironmentConfig {
  const configs = loadEnvironments();
  const config = configs.find((c) => c.stage === stage);
  if (!config) throw new CliError(`${stage ? `no stage "${stage}"` : 'no --stage given'}; stages: ${configs.map((c) => c.stage).join(', ')}`, EXIT.usage);
  return config;
}

export interface StageClients {
  readonly ddb: DynamoDBDocumentClient;
  readonly sqs: SQSClient;
  readonly sfn: SFNClient;
  readonly s3: S3Client;
  readonly sts: STSClient;
}

export function stageClients(config: EnvironmentConfig, options: Record<string, unknown> = {}): StageClients {
  const base = { region: config.account.region, ...options };
  return {
    ddb: DynamoDBDocumentClient.from(new DynamoDBClient(base)),
    sqs: new SQSClient(base),
    sfn: new SFNClient(base),
    // Path-style for an emulator's endpoint (a bucket is no subdomain of 127.0.0.1); AWS itself gets virtual hosts.
    s3: new S3Client({ ...base, forcePathStyle: Boolean(options.endpoint ?? process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL) }),
    sts: new STSClient(base),
  };
}

/** The credentials must be for the stage's account: a command against another account would read the wrong stage. */
export async function checkAccount(clients: StageClients, config: EnvironmentConfig): Promise<void> {
  let account: string | undefined;
  try {
    ({ Account: account } = await clients.sts.send(new GetCallerIdentityCommand({})));
  } catch (error) {
    const name = (error as Error).name;
    if (name === 'CredentialsProviderError' || /credential/i.test((error as Error).message)) {
      throw new CliError('no AWS credentials: set AWS_PROFILE (or run aws sso login), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY', EXIT.failed);
    }
    throw error;
  }
  if (account !== config.account.id) {
    throw new CliError(`these credentials are for account ${account}; stage ${config.stage} lives in ${config.account.id}`, EXIT.failed);
  }
}

/** A queue's URL; a missing queue means the stage is not deployed (here). */
export async function queueUrl(clients: StageClients, config: EnvironmentConfig, name: string): Promise<string> {
  try {
    const { QueueUrl } = await clients.sqs.send(new GetQueueUrlCommand({ QueueName: name, QueueOwnerAWSAccountId: config.account.id }));
    return QueueUrl!;
  } catch (error) {
    if (/NonExistentQueue|QueueDoesNotExist/.test((error as Error).name)) throw notDeployed(config, `queue ${name}`);
    throw error;
  }
}

/** The intake that takes a key (or every key under a prefix): its queue and scope — its route's, or the stage's one. */
export interface Intake {
  readonly queueName: string;
  readonly inputPrefix: string;
  readonly inputSuffix?: string;
  /** The route's name, on a stage with routes. */
  readonly route?: string;
}

/** The intake whose prefix `prefix` lies under (a backfill's, the smoke test's); undefined when none does. */
export function intakeUnder(config: EnvironmentConfig, prefix: string): Intake | undefined {
  return intakeWhere(config, (scope) => prefix.startsWith(scope.inputPrefix));
}

/** The intake that takes a key: its prefix and, if it has one, its suffix (as its Object Created rule matches); undefined when none does. */
export function intakeOfKey(config: EnvironmentConfig, key: string): Intake | undefined {
  return intakeWhere(config, (scope) => routeTakesKey(scope, key));
}

function intakeWhere(config: EnvironmentConfig, takes: (scope: { inputPrefix: string; inputSuffix?: string }) => boolean): Intake | undefined {
  if (!config.routes) {
    const { inputPrefix, inputSuffix } = config.bucket;
    return takes(config.bucket) ? { queueName: intakeQueueName(config.namePrefix), inputPrefix, ...(inputSuffix ? { inputSuffix } : {}) } : undefined;
  }
  const route = config.routes.find(takes);
  if (!route) return undefined;
  const { name, inputPrefix, inputSuffix } = route;
  return { queueName: routeQueueName(config, name), inputPrefix, ...(inputSuffix ? { inputSuffix } : {}), route: name };
}

/**
 * The URL of the intake queue a job's key goes back to, each queue looked up once. A key no route takes goes to the
 * stage's intake queue, where the dispatcher dead-letters it with its reason.
 */
export function intakeQueueUrls(clients: StageClients, config: EnvironmentConfig): (key: string | undefined) => Promise<string> {
  const urls = new Map<string, Promise<string>>();
  return (key) => {
    const name = (key !== undefined ? intakeOfKey(config, key)?.queueName : undefined) ?? intakeQueueName(config.namePrefix);
    if (!urls.has(name)) urls.set(name, queueUrl(clients, config, name));
    return urls.get(name)!;
  };
}

/** A queue's messages: waiting (visible), in flight (received, not deleted), delayed — as SQS approximates them. */
export async function queueDepths(clients: StageClients, url: string) {
  const { Attributes = {} } = await clients.sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: url,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible', 'ApproximateNumberOfMessagesDelayed'],
    }),
  );
  return {
    waiting: Number(Attributes.ApproximateNumberOfMessages ?? 0),
    inFlight: Number(Attributes.ApproximateNumberOfMessagesNotVisible ?? 0),
    delayed: Number(Attributes.ApproximateNumberOfMessagesDelayed ?? 0),
  };
}

export function notDeployed(config: EnvironmentConfig, what: string): CliError {
  return new CliError(`stage ${config.stage} is not deployed in account ${config.account.id} (${config.account.region}): no ${what}`, EXIT.failed);
}

export function isMissingTable(error: unknown): boolean {
  return (error as Error).name === 'ResourceNotFoundException';
}

export function consoleUrlOfExecution(region: string, executionArn: string): string {
  return `https://${region}.console.aws.amazon.com/states/home?region=${region}#/v2/executions/details/${executionArn}`;
}
