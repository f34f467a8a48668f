import { INTEGRATIONS, integrationResource } from '../../modules/run-jobs/asl';
import { EventBridgeRule } from '../engines/eventbridge';
import { s3Event, type Design, type World } from '../world';
import { NAIVE_RETRY, jobIdOfKey, runTaskParameters } from './common';

/**
 * The pipeline the problem starts from: S3 → EventBridge rule → Step Functions StartExecution (one execution per
 * event, a random name: a rule target cannot set it) → `ecs:runTask.sync` with Retry 3 × 3 s, backoff 2, and no
 * limiter. When the retries are spent the execution (and the job) fails. EventBridge's StartExecution calls spend
 * the StartExecution bucket; a throttled call is retried by EventBridge's retry policy.
 * JOB_ID is added to the environment only so the twin can attribute tasks; it is the object key.
 */
function naiveDefinition(world: World) {
  return {
    Comment: 'naive: one execution per S3 event, RunTask .sync retried 3 times, no limiter',
    StartAt: 'RunTask',
    States: {
      RunTask: {
        Type: 'Task',
        Resource: integrationResource('aws', INTEGRATIONS.ecsRunTaskSync),
        Parameters: runTaskParameters(world),
        Retry: NAIVE_RETRY,
        End: true,
      },
    },
  };
}

export const naive: Design = {
  name: 'naive',
  jobIdOf: jobIdOfKey,
  async setup(world) {
    const arn = 'arn:aws:states:eu-west-1:111111111111:stateMachine:naive';
    world.sfn.createStateMachine(arn, naiveDefinition(world));
    world.sfn.onExecutionEnd((execution) => {
      const key = JSON.parse(execution.input).detail.object.key as string;
      world.jobEnded(key, { error: execution.error ?? 'ExecutionFailed' });
    });
    const rule = new EventBridgeRule(
      world.clock,
      world.rng('eventbridge'),
      world.recorder,
      [
        async (event) => {
          world.sfn.startExecution({ stateMachineArn: arn, input: JSON.stringify(event) });
          // No limiter: an execution is "admitted" the moment it starts.
          world.recorder.emit('admit', { jobId: (event.detail as { object: { key: string } }).object.key });
        },
      ],
      {
        duplicateRate: world.scenario.rates.duplicate,
        onDropped: (event) => world.jobEnded((event.detail as { object: { key: string } }).object.key, { error: 'EventBridge.Dropped' }),
      },
    );
    return { upload: (object) => rule.put(s3Event(object, new Date(world.clock.now()).toISOString())) };
  },
};
