/**
 * sluice: one command for each question an on-call engineer asks about a stage.
 *   npx sluice status --stage prod [--json] [--watch [seconds]]
 *   npx sluice find <key | s3://bucket/key | job id> --stage prod [--json]
 * Resource names and the Region come from the stage's configuration; credentials and profile from the standard AWS chain.
 */
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { Command, CommanderError, Option } from 'commander';
import { findJobs, formatFound, parseTarget } from './find';
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

export function program(print: (text: string) => void = (t) => console.log(t)): Command {
  const cli = new Command('sluice').description('Operate a sluice stage').exitOverride().showHelpAfterError();
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
  return cli;
}

/** Runs one command line; returns the exit code (0 done, 1 AWS or deployment, 2 usage, 3 not found). */
export async function run(argv: readonly string[], print?: (text: string) => void, printError: (text: string) => void = (t) => console.error(t)): Promise<number> {
  try {
    await program(print).parseAsync(argv as string[], { from: 'user' });
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : EXIT.usage; // commander printed it
    if (error instanceof CliError) {
      printError(`sluice: ${error.message}`);
      return error.exitCode;
    }
    printError(`sluice: ${(error as Error).name}: ${(error as Error).message}`);
    return EXIT.failed;
  }
}

if (require.main === module) {
  void run(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
