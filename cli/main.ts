/**
 * sluice: one command for each question an on-call engineer asks about a stage, and each action they take.
 *   npx sluice status --stage prod [--json] [--watch [seconds]]
 *   npx sluice find <key | s3://bucket/key | job id> --stage prod [--json]
 *   npx sluice failures --stage prod [--since 24h] [--error NAME] [--json]
 *   npx sluice redrive --stage prod [--failed [--since 24h] [--error NAME]] [--job ID…] [--dlq] [--dry-run]
 *   npx sluice pause | resume | resize --vcpu N [--rate R] [--burst B] | drain [--timeout 30m] --stage prod
 *   npx sluice resize --route NAME --max-vcpu N|config --stage prod
 *   npx sluice smoke --stage prod [--timeout 15m] [--interval 10s] [--json]
 *   npx sluice backfill --stage prod [--prefix P] [--since DATE] [--inventory s3://…/manifest.json] [--dry-run] [--rate N/s] [--checkpoint FILE] [--json]
 * Resource names and the Region come from the stage's configuration; credentials and profile from the standard AWS chain.
 */
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { Command, CommanderError, Option } from 'commander';
import {
  backfill,
  checkCheckpoint,
  checkPrefix,
  DEFAULT_RATE_PER_SECOND,
  defaultRateFor,
  formatBackfill,
  parseMaxBacklog,
  parseRate,
  parseSince,
} from './backfill';
import { formatFailures, readFailures } from './failures';
import { parseS3Url } from './inventory';
import { findJobs, formatFound, parseTarget } from './find';
import { parseDuration, parseNumber } from './options';
import { drain, formatChange, formatDrain, pause, resize, resume, type PoolChange } from './pool';
import { configuredRoute, formatRouteCap, resizeRoute, type WantedCap } from './route-cap';
import { systemClock } from '../functions/runtime';
import { progressBar } from './progress';
import { formatSmoke, smoke } from './smoke';
import { checkRequest, formatRedrive, redrive } from './redrive';
import { CliError, checkAccount, EXIT, stageClients, stageConfig, stageNames } from './stage';
import { formatStatus, readStatus } from './status';

interface Common {
  readonly stage?: string;
  readonly json?: boolean;
}

const stageOption = () => new Option('--stage <name>', 'the stage (environments/<name>.ts)');
const jsonOption = () => new Option('--json', 'print JSON instead of a table');

async function connect(stage: string | undefined) {
  const config = stageConfig(stage);
  const clients = { ...stageClients(config), cloudwatch: new CloudWatchClient({ region: config.account.region }) };
  await checkAccount(clients, config);
  return { config, clients };
}

type Print = (text: string) => void;
type Connection = Awaited<ReturnType<typeof connect>>;

/** `status`: the stage as one snapshot, once or every few seconds. */
function addStatus(cli: Command, print: Print): void {
  cli
    .command('status')
    .description('budget, vCPU in use vs quota, leases, launch tokens, backlog, dead letters, running executions')
    .addOption(stageOption())
    .addOption(jsonOption())
    .option('--watch [seconds]', 'refresh every few seconds until interrupted')
    .action(async (options: Common & { watch?: string | boolean }) => {
      const interval = options.watch === undefined || options.watch === false ? undefined : options.watch === true ? 5 : Number(options.watch);
      if (interval !== undefined && !(interval >= 1)) throw new CliError(`--watch takes seconds, at least 1 (got ${String(options.watch)})`, EXIT.usage);
      const { config, clients } = await connect(options.stage);
      for (;;) {
        const status = await readStatus(clients, config, Date.now());
        print(options.json ? JSON.stringify(status, null, 2) : formatStatus(status));
        if (interval === undefined) return;
        await new Promise((resolve) => setTimeout(resolve, interval * 1000));
        if (!options.json) print('');
      }
    });
}

/** `find`: every job of an object, or one job. */
function addFind(cli: Command, print: Print): void {
  cli
    .command('find')
    .description('every job for an object (each version), or one job: status, attempts, times, execution, task, result, error')
    .argument('<target>', 'an object key in the stage bucket, s3://bucket/key, or a job id (32 hex)')
    .addOption(stageOption())
    .addOption(jsonOption())
    .action(async (target: string, options: Common) => {
      const { config, clients } = await connect(options.stage);
      const jobs = await findJobs(clients, config, parseTarget(target, stageNames(config).bucket));
      print(options.json ? JSON.stringify(jobs, null, 2) : formatFound(jobs));
    });
}

/** `failures`: failed jobs by error, dead letters by reason. */
function addFailures(cli: Command, print: Print): void {
  cli
    .command('failures')
    .description('failed jobs grouped by error, with counts and examples (from the failed-jobs index, no scan); dead letters by reason')
    .addOption(stageOption())
    .addOption(jsonOption())
    .option('--since <duration>', 'how far back: 90s, 15m, 24h, 7d', '24h')
    .option('--error <name>', 'only this error (e.g. States.TaskFailed)')
    .option('--examples <n>', 'examples per error', '3')
    .action(async (options: Common & { since: string; error?: string; examples: string }) => {
      const since = Date.now() - parseDuration('--since', options.since);
      const examples = parseNumber('--examples', options.examples, 0, 100);
      const { config, clients } = await connect(options.stage);
      const report = await readFailures(clients, config, { since, error: options.error, examples }, Date.now());
      print(options.json ? JSON.stringify(report, null, 2) : formatFailures(report));
    });
}

/** `redrive`: failed jobs and dead letters back into the pipeline. */
function addRedrive(cli: Command, print: Print): void {
  cli
    .command('redrive')
    .description('failed jobs and dead letters back into the pipeline; idempotent: run twice, the second finds nothing')
    .addOption(stageOption())
    .addOption(jsonOption())
    .option('--failed', 'every job failed since --since (and of --error, if given)')
    .option('--since <duration>', 'with --failed: how far back', '24h')
    .option('--error <name>', 'with --failed: only this error')
    .option('--dlq', 'the intake and rule dead-letter queues back to the intake queue (poison stays: it would come back)')
    .option('--include-poison', 'with --dlq: poison too, once its cause (scope, format) is fixed')
    .option('--job <id...>', 'these jobs: failed ones go back; a queued one without a lease is sent again (an interrupted redrive)')
    .option('--dry-run', 'say what would be redriven; change nothing')
    .action(
      async (
        options: Common & { failed?: boolean; since: string; error?: string; job?: string[]; dlq?: boolean; includePoison?: boolean; dryRun?: boolean },
      ) => {
        if (options.error && !options.failed) throw new CliError('--error goes with --failed', EXIT.usage);
        if (options.includePoison && !options.dlq) throw new CliError('--include-poison goes with --dlq', EXIT.usage);
        const request = {
          failedSince: options.failed ? Date.now() - parseDuration('--since', options.since) : undefined,
          error: options.error,
          jobIds: options.job ?? [],
          deadLetters: options.dlq === true,
          includePoison: options.includePoison === true,
          dryRun: options.dryRun === true,
        };
        checkRequest(request);
        const { config, clients } = await connect(options.stage);
        const summary = await redrive(clients, config, request, progressBar('redrive'), Date.now());
        print(options.json ? JSON.stringify(summary, null, 2) : formatRedrive(summary));
      },
    );
}

/** What a pool command did: its JSON, and its text for a terminal. */
interface PoolOutcome {
  readonly json: unknown;
  readonly text: string;
}

const poolChanged = (change: PoolChange): PoolOutcome => ({ json: change, text: formatChange(change) });

/** `pause`, `resume`, `resize`: the limiter's settings, checked as configure-pool checks them. */
function addPoolCommands(cli: Command, print: Print): void {
  /** A command that changes the pool: its options are checked (`plan`) before any AWS call. */
  const poolCommand = (name: string, description: string, plan: (options: Record<string, string>) => (connection: Connection) => Promise<PoolOutcome>) =>
    cli
      .command(name)
      .description(description)
      .addOption(stageOption())
      .addOption(jsonOption())
      .action(async (options: Common & Record<string, string>) => {
        const change = plan(options);
        const outcome = await change(await connect(options.stage));
        print(options.json ? JSON.stringify(outcome.json, null, 2) : outcome.text);
      });
  poolCommand(
    'pause',
    'admit nothing new (budget 0); running jobs finish; the budget is kept for resume',
    () =>
      async ({ config, clients }) =>
        poolChanged(await pause(clients, config, Date.now())),
  );
  poolCommand(
    'resume',
    'admit again, with the budget from before the pause',
    () =>
      async ({ config, clients }) =>
        poolChanged(await resume(clients, config, Date.now())),
  );
  poolCommand('resize', "change the budget (and launch rate, burst), or one route's cap, checked against the stage's quota and limits", (o) =>
    o.route !== undefined ? planRouteResize(o) : planBudgetResize(o),
  )
    .option('--vcpu <n>', 'the budget, vCPU (0 pauses)')
    .option('--rate <r>', 'launches per second (below 20)')
    .option('--burst <b>', 'launches at once (up to 20)')
    .option('--route <name>', "change this route's cap instead (with --max-vcpu)")
    .option('--max-vcpu <n|config>', "the route's cap, vCPU; config: back to its maxVcpu in environments/<stage>.ts");
}

function planBudgetResize(o: Record<string, string>): (connection: Connection) => Promise<PoolOutcome> {
  if (o.maxVcpu !== undefined) throw new CliError("--max-vcpu is a route's cap: give the route with --route <name>", EXIT.usage);
  if (o.vcpu === undefined) throw new CliError("required option '--vcpu <n>' not specified (or --route <name> --max-vcpu <n> for a route's cap)", EXIT.usage);
  const wanted = {
    vcpu: parseNumber('--vcpu', o.vcpu, 0),
    rate: o.rate === undefined ? undefined : parseNumber('--rate', o.rate, 0),
    burst: o.burst === undefined ? undefined : parseNumber('--burst', o.burst, 1),
  };
  return async ({ config, clients }) => poolChanged(await resize(clients, config, wanted, Date.now()));
}

function planRouteResize(o: Record<string, string>): (connection: Connection) => Promise<PoolOutcome> {
  if (o.vcpu !== undefined || o.rate !== undefined || o.burst !== undefined)
    throw new CliError("--route changes one route's cap (--max-vcpu); --vcpu, --rate and --burst change the stage's budget: give one or the other", EXIT.usage);
  if (o.maxVcpu === undefined) throw new CliError('--route needs --max-vcpu <n|config>', EXIT.usage);
  const cap: WantedCap = o.maxVcpu === 'config' ? 'config' : parseNumber('--max-vcpu', o.maxVcpu, 0);
  configuredRoute(stageConfig(o.stage), o.route);
  return async ({ config, clients }) => {
    const change = await resizeRoute(clients, config, o.route, cap);
    return { json: change, text: formatRouteCap(change) };
  };
}

/** `drain`: pause, then wait until nothing runs. */
function addDrain(cli: Command, print: Print): void {
  cli
    .command('drain')
    .description('pause, then wait until nothing runs; reports what is still queued (exit 4 if the timeout passes first)')
    .addOption(stageOption())
    .addOption(jsonOption())
    .option('--timeout <duration>', 'how long to wait', '30m')
    .option('--interval <duration>', 'how often to look', '10s')
    .action(async (options: Common & { timeout: string; interval: string }) => {
      const timeoutMs = parseDuration('--timeout', options.timeout);
      const intervalMs = parseDuration('--interval', options.interval);
      const { config, clients } = await connect(options.stage);
      const clock = { now: () => Date.now(), sleep: (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)) };
      const outcome = await drain(clients, config, { timeoutMs, intervalMs }, progressBar('drain'), clock);
      print(options.json ? JSON.stringify(outcome, null, 2) : formatDrain(outcome));
      if (!outcome.drained) throw new CliError(`drain timed out after ${options.timeout}`, EXIT.timedOut);
    });
}

/** `smoke`: one canary object through the stage, end to end; exit 0 passed, 1 failed, 4 timed out. */
function addSmoke(cli: Command, print: Print): void {
  cli
    .command('smoke')
    .description('upload a canary under the input prefix, follow it to its result, check the lease came back, print each hop')
    .addOption(stageOption())
    .addOption(jsonOption())
    .option('--timeout <duration>', 'how long to wait for the job to end', '15m')
    .option('--interval <duration>', 'how often to look', '10s')
    .action(async (options: Common & { timeout: string; interval: string }) => {
      const timeoutMs = parseDuration('--timeout', options.timeout);
      const intervalMs = parseDuration('--interval', options.interval);
      const { config, clients } = await connect(options.stage);
      const clock = { now: () => Date.now(), sleep: (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)) };
      const report = await smoke(clients, config, { timeoutMs, intervalMs, ...clock }, (text) => process.stderr.write(`${text}\n`));
      print(options.json ? JSON.stringify(report, null, 2) : formatSmoke(report));
      if (report.exitCode !== 0) throw new CliError(`smoke ${report.outcome}`, report.exitCode);
    });
}

/** `backfill`: the objects already in the bucket through the intake, as their uploads would have gone. */
function addBackfill(cli: Command, print: Print): void {
  cli
    .command('backfill')
    .description("send the bucket's existing objects (current versions) through the intake as uploads; a job already started starts nothing again")
    .addOption(stageOption())
    .addOption(jsonOption())
    .option('--prefix <prefix>', 'only keys under this prefix (inside the input prefix)')
    .option('--since <date>', 'only objects modified at or after this date (2026-11-01, UTC) or ISO time')
    .option('--rate <n/s>', `messages per second (default ${DEFAULT_RATE_PER_SECOND}/s, or the stage's most if lower)`)
    .option('--max-backlog <n>', "wait while the intake queue holds this many messages (default: an hour of the stage's launches)")
    .option('--checkpoint <file>', 'record progress after each listing page; run again with the same file to resume')
    .option('--inventory <manifest>', 'read an S3 Inventory report of the bucket (all versions, CSV; s3://…/manifest.json) instead of listing it')
    .option('--dry-run', 'list and count what would be sent; send nothing')
    .action(
      async (
        options: Common & { prefix?: string; since?: string; rate?: string; maxBacklog?: string; checkpoint?: string; inventory?: string; dryRun?: boolean },
      ) => {
        const stage = stageConfig(options.stage);
        const request = {
          prefix: checkPrefix(options.prefix, stage),
          since: options.since === undefined ? undefined : parseSince(options.since),
          ratePerSecond: options.rate === undefined ? defaultRateFor(stage) : parseRate(options.rate, stage),
          maxBacklog: options.maxBacklog === undefined ? undefined : parseMaxBacklog(options.maxBacklog, stage),
          dryRun: options.dryRun === true,
          checkpointFile: options.checkpoint,
          inventory: options.inventory,
        };
        if (request.inventory !== undefined) parseS3Url('--inventory', request.inventory);
        checkCheckpoint(stage, request);
        const { config, clients } = await connect(options.stage);
        const listDryRun = request.dryRun && !options.json ? (key: string, jobId: string) => print(`would send  ${key}  (job ${jobId})`) : undefined;
        const summary = await backfill(clients, config, request, progressBar('backfill'), systemClock, listDryRun);
        print(options.json ? JSON.stringify(summary, null, 2) : formatBackfill(summary));
      },
    );
}

/**
 * Text as a terminal shows it, with what an uploader controls made inert: object keys, causes and dead letters are
 * printed, and a key may hold escape sequences that rewrite the screen or hide a link. Control characters (but line
 * breaks and tabs) and bidirectional overrides are printed as `\u001b`-style escapes.
 */
export function printable(text: string): string {
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is matched
  return text.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function program(print: Print = (t) => console.log(t)): Command {
  const cli = new Command('sluice').description('Operate a sluice stage').exitOverride().showHelpAfterError();
  for (const add of [addStatus, addFind, addFailures, addRedrive, addPoolCommands, addDrain, addSmoke, addBackfill]) add(cli, (text) => print(printable(text)));
  return cli;
}

/** Runs one command line; returns the exit code (EXIT: 0 done, 1 AWS or deployment, 2 usage, 3 not found, 4 timed out). */
export async function run(
  argv: readonly string[],
  print?: (text: string) => void,
  printError: (text: string) => void = (t) => console.error(t),
): Promise<number> {
  try {
    await program(print).parseAsync(argv as string[], { from: 'user' });
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : EXIT.usage; // commander printed it
    if (error instanceof CliError) {
      printError(printable(`sluice: ${error.message}`));
      return error.exitCode;
    }
    printError(printable(`sluice: ${(error as Error).name}: ${(error as Error).message}`));
    return EXIT.failed;
  }
}
