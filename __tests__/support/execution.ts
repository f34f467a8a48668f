/**
 * One execution of the synthesized dev state machine (aws-local-stepfunctions, as the state-machine tests run it)
 * against a world's moto table and SQS emulator, for the protocol tests: RunTask answers as the test says, SendMessage
 * lands in the world's queue (or fails as the test says), and a hook runs between states.
 */
import type { EnvironmentConfig } from '../../environments';
import { STATES } from '../../modules/run-jobs/definition';
import { loadLocalStepFunctions } from '../../twin/engines/local-sfn';
import { localHandlers, synthesizedDefinition, type LocalHandler } from './local-sfn';
import type { MotoDynamo } from './moto';
import type { StartedExecution } from './intake-world';

const { StateMachine } = loadLocalStepFunctions();

interface SmWorld {
  readonly tableName: string;
  readonly queueUrl: string;
  readonly sqs: {
    sendMessage(
      url: string,
      body: string,
      delaySeconds?: number,
      attributes?: Record<string, { DataType: string; StringValue?: string }>,
    ): { MessageId: string };
  };
}

export async function runExecutionOf(
  moto: MotoDynamo,
  world: SmWorld,
  config: EnvironmentConfig,
  execution: StartedExecution,
  options: {
    runTask: LocalHandler;
    /** Called after a requeue message is in the world's queue, before the next state runs. */
    afterSend?: (body: string, delaySeconds: number) => Promise<void>;
    sendMessage?: LocalHandler;
  },
) {
  const definition = synthesizedDefinition('dev', config, world.tableName);
  const machine = new StateMachine(definition as never, { validationOptions: { checkArn: false } });
  const sent: Array<{ body: string; delaySeconds: number }> = [];
  // No waiting between retries: what matters here is the order of the states, not their timing.
  const instant = Object.fromEntries(Object.values(STATES).map((s) => [s, 0]));
  const run = machine.run({ jobs: execution.jobs } as never, {
    overrides: {
      taskResourceLocalHandlers: localHandlers(definition, {
        dynamodb: moto.client,
        runTask: options.runTask,
        invokeLambda: async () => ({ StatusCode: 202 }),
        sendMessage:
          options.sendMessage ??
          (async (input) => {
            const body = JSON.stringify(input.MessageBody);
            const { MessageId } = world.sqs.sendMessage(world.queueUrl, body, input.DelaySeconds, input.MessageAttributes);
            sent.push({ body, delaySeconds: input.DelaySeconds });
            await options.afterSend?.(body, input.DelaySeconds);
            return { MessageId };
          }),
      }),
      retryIntervalOverrides: instant,
      waitTimeOverrides: { [STATES.waitBeforeRetry]: 0 },
    },
    context: { Execution: { Name: execution.name, Id: `arn:aws:states:eu-west-1:111111111111:execution:sluice-dev-jobs:${execution.name}` } },
  });
  const result = await run.result;
  return { result, sent };
}

/** RunTask's answer when Fargate has no capacity: a non-empty failures[] (AmazonECS.Unknown). */
export function capacityError(): Error {
  const error = new Error(
    JSON.stringify({ Failures: [{ Reason: 'Capacity is unavailable at this time. Please try again later or in a different availability zone' }] }),
  );
  error.name = 'AmazonECS.Unknown';
  return error;
}
