import { GetAccountSettingsCommand, GetFunctionConcurrencyCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { GetServiceQuotaCommand, ServiceQuotasClient } from '@aws-sdk/client-service-quotas';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { EnvironmentConfig } from '../environments';
import { stageArguments } from './stages';
import { stackName } from '../environments/names';
import { readSynthesizedStacks, resourcesOf, type TerraformJson } from '../synth/output';

/**
 * What the account must allow before a stage's first apply, checked with the caller's credentials:
 *   npm run preflight -- --stage dev [--json]
 * - Lambda keeps at least 100 concurrent executions unreserved (PutFunctionConcurrency); the stage reserves some
 *   (one dispatcher, one janitor), and a new account's limit is often 10, so the apply would fail half-way.
 * - The Fargate vCPU quotas the stage's capacity providers use must hold what the stage config assumes.
 * Exit 0 when every check passes, 1 when one fails, 2 for bad arguments or a wrong account.
 */
const LAMBDA_MIN_UNRESERVED = 100;
const LAMBDA_CONCURRENCY_QUOTA = 'L-B99A9384';
const FARGATE_QUOTA_CODES = { FARGATE: 'L-3032A538', FARGATE_SPOT: 'L-36FBB829' } as const;

interface Finding {
  readonly check: string;
  readonly ok: boolean;
  readonly detail: string;
  /** What to do about it, when not ok. */
  readonly fix?: string;
}

/** The functions of a synthesized stage that reserve concurrency, by name. */
export function reservedConcurrency(json: TerraformJson): Array<{ functionName: string; reserved: number }> {
  return resourcesOf(json, 'aws_lambda_function')
    .map(([, fn]) => ({ functionName: String(fn.function_name), reserved: Number(fn.reserved_concurrent_executions ?? 0) }))
    .filter((fn) => fn.reserved > 0);
}

export function assessLambdaConcurrency(
  account: { concurrentExecutions: number; unreservedConcurrentExecutions: number },
  functions: ReadonlyArray<{ functionName: string; reserved: number; alreadyReserved: number }>,
  region: string,
): Finding {
  const added = functions.reduce((sum, fn) => sum + Math.max(0, fn.reserved - fn.alreadyReserved), 0);
  const left = account.unreservedConcurrentExecutions - added;
  const which = functions.map((fn) => `${fn.functionName} ${fn.reserved}`).join(', ');
  const detail = `account limit ${account.concurrentExecutions}, unreserved ${account.unreservedConcurrentExecutions}; the stage reserves ${added} more (${which}), leaving ${left}`;
  if (left >= LAMBDA_MIN_UNRESERVED) return { check: 'lambda concurrency', ok: true, detail };
  const wanted = Math.max(1000, account.concurrentExecutions - left + LAMBDA_MIN_UNRESERVED);
  return {
    check: 'lambda concurrency',
    ok: false,
    detail: `${detail}; Lambda keeps at least ${LAMBDA_MIN_UNRESERVED} unreserved, so the apply would fail setting reserved concurrency`,
    fix:
      `raise "Concurrent executions" (${LAMBDA_CONCURRENCY_QUOTA}) to at least ${account.concurrentExecutions - left + LAMBDA_MIN_UNRESERVED}: ` +
      `aws service-quotas request-service-quota-increase --region ${region} --service-code lambda --quota-code ${LAMBDA_CONCURRENCY_QUOTA} --desired-value ${wanted}`,
  };
}

export function assessFargateQuota(config: EnvironmentConfig, provider: keyof typeof FARGATE_QUOTA_CODES, quota: number): Finding {
  const { accountVcpuQuota, vcpuBudget } = config.capacity;
  const check = `fargate ${provider} vCPU quota`;
  const detail = `${FARGATE_QUOTA_CODES[provider]} is ${quota} vCPU; environments/${config.stage}.ts assumes ${accountVcpuQuota}, budget ${vcpuBudget}`;
  if (quota >= vcpuBudget && quota >= accountVcpuQuota) return { check, ok: true, detail };
  return {
    check,
    ok: false,
    detail,
    fix:
      quota < vcpuBudget
        ? `lower capacity.vcpuBudget to at most ${quota}, or raise the quota: aws service-quotas request-service-quota-increase --region ${config.account.region} --service-code fargate --quota-code ${FARGATE_QUOTA_CODES[provider]} --desired-value ${Math.ceil(accountVcpuQuota)}`
        : `set capacity.accountVcpuQuota to ${quota} in environments/${config.stage}.ts (what the account has), or raise the quota to ${accountVcpuQuota}`,
  };
}

async function runChecks(config: EnvironmentConfig, json: TerraformJson): Promise<Finding[]> {
  const region = config.account.region;
  const lambda = new LambdaClient({ region });
  const quotas = new ServiceQuotasClient({ region });
  const { AccountLimit } = await lambda.send(new GetAccountSettingsCommand({}));
  const functions = await Promise.all(
    reservedConcurrency(json).map(async (fn) => {
      try {
        const { ReservedConcurrentExecutions } = await lambda.send(new GetFunctionConcurrencyCommand({ FunctionName: fn.functionName }));
        return { ...fn, alreadyReserved: ReservedConcurrentExecutions ?? 0 };
      } catch (error) {
        if ((error as Error).name === 'ResourceNotFoundException') return { ...fn, alreadyReserved: 0 };
        throw error;
      }
    }),
  );
  const findings = [
    assessLambdaConcurrency(
      { concurrentExecutions: AccountLimit?.ConcurrentExecutions ?? 0, unreservedConcurrentExecutions: AccountLimit?.UnreservedConcurrentExecutions ?? 0 },
      functions,
      region,
    ),
  ];
  for (const provider of new Set(config.task.capacityProviders.map((p) => p.name))) {
    const { Quota } = await quotas.send(new GetServiceQuotaCommand({ ServiceCode: 'fargate', QuotaCode: FARGATE_QUOTA_CODES[provider] }));
    findings.push(assessFargateQuota(config, provider, Quota?.Value ?? 0));
  }
  return findings;
}

async function main(): Promise<number> {
  const usage = 'usage: npm run preflight -- --stage <stage> [--json]   (after npm run synth, with credentials for the stage account)';
  const args = stageArguments(() => parseArgs({ options: { stage: { type: 'string' }, json: { type: 'boolean', default: false } } }).values, usage);
  if (!args) return 2;
  const { values, config } = args;
  const stack = existsSync(join('cdktf.out', 'manifest.json')) ? readSynthesizedStacks().find((s) => s.name === stackName(config.stage)) : undefined;
  if (!stack) {
    console.error(`no synthesized ${stackName(config.stage)} in cdktf.out: run npm run synth first`);
    return 2;
  }
  const { Account } = await new STSClient({ region: config.account.region }).send(new GetCallerIdentityCommand({}));
  if (Account !== config.account.id) {
    console.error(`these credentials are for account ${Account}; stage ${config.stage} lives in ${config.account.id}`);
    return 2;
  }
  const findings = await runChecks(config, stack.json);
  if (values.json) console.log(JSON.stringify(findings, null, 2));
  else {
    for (const f of findings) {
      console.log(`${f.ok ? 'ok  ' : 'FAIL'} ${f.check}: ${f.detail}`);
      if (f.fix) console.log(`     fix: ${f.fix}`);
    }
  }
  return findings.every((f) => f.ok) ? 0 : 1;
}

if (require.main === module) {
  main().then(
    (code) => process.exit(code),
    (error: Error) => {
      console.error(`preflight failed: ${error.name}: ${error.message}`);
      process.exit(1);
    },
  );
}
