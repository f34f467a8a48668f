/**
 * sluice as deployed: everything is read from the stage's synthesized `cdk.tf.json` (twin/synthesized-stage.ts, with the
 * scenario's overrides applied to the stage config before synth). The dispatcher and janitor are the real `functions/` code, run with
 * the twin's SQS, Step Functions, Lambda and clock, and a DynamoDB document client on dynalite.
 *
 * Wiring, per the pipeline's contract: the S3 rule (one per route, on a stage with routes) targets the intake queue
 * (its route's) and (second target) the dispatcher;
 * the state machine's lambda:invoke after a release wakes the dispatcher; the dispatcher also runs every 60 s.
 * The janitor runs on FAILED/TIMED_OUT/ABORTED executions and every 5 minutes.
 */
import { objectsOfTask, readBatchRecord, recordObjectOutcome } from '../../functions/batches';
import { configurePool } from '../../functions/configure-pool';
import { finishTask, parseFinishEvent } from '../../functions/finish-task';
import type { Pack } from '../../functions/packing';
import { runDispatcher, StartedBatches, wakeOf } from '../../functions/dispatcher';
import {
  capacitySettingsFromEnv,
  configurePoolSettingsFromEnv,
  dispatcherSettingsFromEnv,
  finisherSettingsFromEnv,
  janitorSettingsFromEnv,
  type DispatcherSettings,
} from '../../functions/environment';
import { runJanitor } from '../../functions/janitor';
import { executionArnOf, jobIdOf } from '../../functions/jobs';
import { LEDGER_KEY_PREFIX } from '../../functions/ledger';
import { readCapacity } from '../../functions/capacity';
import { effectiveBudget, readPool } from '../../functions/limiter';
import type { AwsClient } from '../../functions/runtime';
import { STATES } from '../../modules/run-jobs/definition';
import { EventBridgeRule } from '../engines/eventbridge';
import { SDK_RETRY } from '../engines/faults';
import { queueUrl } from '../engines/sqs';
import { LeakWatch } from '../leaks';
import { s3Event, type Design, type World } from '../world';
import { synthesizeStageJson } from '../../synth/stage';
import { readStage, type Stage } from '../synthesized-stage';
import { ruleForSource, rulesForSource, ruleTakesKey, type TargetOf } from '../wiring';

type Clients = { sqs: AwsClient; sfn: AwsClient; ddb: AwsClient; lambda: AwsClient };

/** What the wiring of one run shares. */
interface Run {
  readonly world: World;
  readonly stage: Stage;
  readonly clock: { now(): number; sleep(ms: number): Promise<void> };
  readonly idOf: (o: { bucket: string; key: string; sequencer: string }) => string;
  /** What EventBridge does for a target: the event to a queue; the rule's input, or else the event, to a function. */
  readonly deliver: (target: TargetOf, event: Record<string, unknown>) => void;
}

/** The stage's queues; what reaches a dead-letter queue is recorded with its reason. */
function createQueues(run: Run): void {
  const { world, stage, idOf } = run;
  const dlqNames = new Set(stage.queues.flatMap((q) => (q.redrive ? [q.redrive.deadLetterQueueName] : [])));
  dlqNames.add(new URL(stage.dispatcher.env.DEAD_LETTER_QUEUE_URL).pathname.split('/').pop()!);
  for (const queue of stage.queues) world.sqs.createQueue(queue);
  world.sqs.onSend = (queueName, body, attributes) => {
    if (!dlqNames.has(queueName)) return;
    let jobId: string | undefined;
    try {
      const parsed = JSON.parse(body);
      jobId = parsed.jobId ?? idOf({ bucket: parsed.detail.bucket.name, key: parsed.detail.object.key, sequencer: parsed.detail.object.sequencer });
    } catch {
      jobId = undefined;
    }
    world.dlq(jobId, attributes.reason?.StringValue ?? 'maxReceiveCount');
  };
}

/** The dispatcher and the janitor: the real functions/ code, with the stage's settings and the runtime's clients. */
function registerDispatchAndJanitor(run: Run, clients: Clients, leaks: LeakWatch, dispatcherSettings: DispatcherSettings): void {
  const { world, stage, clock } = run;
  const started = new StartedBatches();
  const janitorSettings = janitorSettingsFromEnv(stage.janitor.env);
  world.lambda.register({
    name: stage.dispatcher.name,
    memoryMB: stage.dispatcher.memoryMB,
    reservedConcurrency: stage.dispatcher.reservedConcurrency,
    handler: async (payload) => {
      try {
        return await world.faults.dispatcherCrash.run({ sqs: clients.sqs, sfn: clients.sfn, ddb: clients.ddb }, (c) =>
          runDispatcher({
            ...c,
            clock,
            settings: dispatcherSettings,
            started,
            wake: wakeOf(payload),
            log: (event) => {
              if (event.event === 'admitted') for (const jobId of event.jobIds) world.recorder.emit('admit', { jobId });
            },
          }),
        );
      } finally {
        leaks.dispatcherRunEnded();
      }
    },
  });
  world.lambda.register({
    name: stage.janitor.name,
    memoryMB: stage.janitor.memoryMB,
    reservedConcurrency: stage.janitor.reservedConcurrency,
    handler: () =>
      world.faults.janitorCrash.run(clients, (c) =>
        runJanitor({
          ...c,
          clock,
          settings: janitorSettings,
          log: (event) => {
            if (event.event === 'leaseReclaimed' && event.outcome === 'failed')
              world.jobFailed(event.jobId, `Janitor: execution ${event.executionState}, attempts used up`);
          },
        }),
      ),
  });
}

/**
 * A stage that packs: its finisher (the real functions/ code, called synchronously by the state machine), and the
 * worker its packed tasks run, which reads its objects from the batch record and records each one's end there.
 */
function registerPacking(run: Run, clients: Clients, batchesTableName: string): void {
  const { world, stage, clock } = run;
  if (!stage.finisher) return;
  // The worker's own client: the SDK's retries over the scenario's DynamoDB weather.
  const workerDdb = world.faults.sdk(world.ddb.documentClient, SDK_RETRY.dynamodb);
  const settings = finisherSettingsFromEnv(stage.finisher.env);
  world.lambda.register({
    name: stage.finisher.name,
    memoryMB: stage.finisher.memoryMB,
    reservedConcurrency: stage.finisher.reservedConcurrency,
    handler: (payload) => finishTask({ ddb: clients.ddb, sqs: clients.sqs, clock, settings }, parseFinishEvent(payload)),
  });
  world.ecs.packedWorker = {
    objects: async (batch, task) => objectsOfTask(await readBatchRecord(workerDdb, batchesTableName, batch), task),
    record: (batch, jobId, outcome) => recordObjectOutcome(workerDdb, batchesTableName, batch, jobId, outcome),
  };
}

/** The objects a Map item ran: its job, or a packed task's objects (its batch record's, of its task). */
async function objectsOfItem(world: World, batchesTableName: string, executionArn: string, job: { jobId: string; pack?: Pack }): Promise<string[]> {
  if (!job.pack) return [job.jobId];
  const record = await readBatchRecord(world.ddb.observer, batchesTableName, executionArn.split(':').pop()!);
  return record ? objectsOfTask(record, job.pack.task).map((j) => j.jobId) : [job.jobId];
}

/** The state machine as synthesized; the twin records each job's end and each lease's release. */
function createStateMachine(
  run: Run,
  batchesTableName: string,
  onHold: () => void,
): {
  jobsOf: (input: string) => Array<{ jobId: string; pack?: Pack }>;
  ended: Map<string, Set<number>>;
  endItem: (executionArn: string, job: { jobId: string; pack?: Pack }) => void;
} {
  const { world, stage } = run;
  world.sfn.createStateMachine(stage.stateMachine.arn, stage.stateMachine.definition);
  const jobsOf = (input: string) => (JSON.parse(input).jobs ?? []) as Array<{ jobId: string; pack?: Pack }>;
  const ended = new Map<string, Set<number>>();
  const endItem = (executionArn: string, job: { jobId: string; pack?: Pack }) => {
    if (!job.pack) return world.jobEnded(job.jobId);
    void objectsOfItem(world, batchesTableName, executionArn, job).then((ids) => ids.forEach((id) => world.jobEnded(id)));
  };
  world.sfn.onMapIterationEnd(({ execution, index }) => {
    const job = jobsOf(execution.input)[index];
    if (!job) return;
    if (!ended.has(execution.executionArn)) ended.set(execution.executionArn, new Set());
    ended.get(execution.executionArn)!.add(index);
    endItem(execution.executionArn, job);
  });
  // The states whose transaction gives a lease back (with the result, or back to the queue).
  const releasing = new Set<string>([
    STATES.finishJob,
    STATES.recordFailure,
    STATES.giveBackLease,
    STATES.giveBackLeaseShortOfCapacity,
    STATES.giveBackLeaseAndHold,
  ]);
  world.sfn.onTaskEnd(({ stateName, input, error }) => {
    if (error || !releasing.has(stateName)) return;
    const key = input?.TransactItems?.[0]?.Update?.Key?.pk?.S as string | undefined;
    world.recorder.emit('release', { jobId: key?.slice(LEDGER_KEY_PREFIX.length), vcpu: world.taskVcpu });
    if (stateName === STATES.giveBackLeaseAndHold) onHold();
  });
  return { jobsOf, ended, endItem };
}

/** The capacity reader, every minute, on the account the scenario describes (Service Quotas, AWS/Usage). */
function registerCapacity(run: Run, clients: Clients, tableName: string) {
  const { world, stage, clock } = run;
  const capacitySettings = capacitySettingsFromEnv(stage.capacity.env);
  let lastEffective: number | undefined;
  const emitBudget = async () => {
    const effective = effectiveBudget(await readPool(world.ddb.observer, tableName), world.clock.now()).vcpu;
    if (effective !== lastEffective) world.recorder.emit('budget', { effectiveVcpu: effective });
    lastEffective = effective;
  };
  const measureAccount = async (ddb = clients.ddb) => {
    await readCapacity({ quotas: world.account, cloudwatch: world.account, ddb, clock, settings: capacitySettings });
    await emitBudget();
  };
  world.lambda.register({
    name: stage.capacity.name,
    memoryMB: stage.capacity.memoryMB,
    reservedConcurrency: stage.capacity.reservedConcurrency,
    handler: () => measureAccount(),
  });
  return { emitBudget, measureAccount };
}

/** An execution's end: its jobs' ends, and the stage's rule on its status changes, with the event EventBridge would send. */
function onExecutionEnd(run: Run, leaks: LeakWatch, machine: ReturnType<typeof createStateMachine>): void {
  const { world, stage, deliver } = run;
  const onStatus = ruleForSource(stage.rules, 'aws.states');
  world.sfn.onExecutionEnd((execution) => {
    leaks.executionEnded(execution.name);
    if (execution.status === 'SUCCEEDED') {
      const seen = machine.ended.get(execution.executionArn);
      machine.jobsOf(execution.input).forEach((job, index) => {
        if (!seen?.has(index)) machine.endItem(execution.executionArn, job);
      });
    }
    if (onStatus.pattern?.detail?.status?.includes(execution.status)) {
      const event = {
        source: 'aws.states',
        'detail-type': 'Step Functions Execution Status Change',
        detail: { executionArn: execution.executionArn, stateMachineArn: stage.stateMachine.arn, status: execution.status },
      };
      for (const target of onStatus.targets) deliver(target, event);
    }
    machine.ended.delete(execution.executionArn);
  });
}

/**
 * Every scheduled rule of the stage at its rate, and the upload rules with their targets and their retry policy: an
 * upload goes to each rule whose key filter takes its key (a stage with routes has one per route).
 */
function schedulesAndUploads(run: Run): (event: ReturnType<typeof s3Event>, key: string) => void {
  const { world, stage, deliver } = run;
  const every = (seconds: number, fn: () => void) => {
    const tick = () => {
      fn();
      world.clock.setTimeout(tick, seconds * 1000);
    };
    world.clock.setTimeout(tick, seconds * 1000);
  };
  for (const rule of stage.rules.filter((r) => r.everySeconds !== undefined)) {
    for (const target of rule.targets) every(rule.everySeconds!, () => deliver(target, { source: 'aws.events', 'detail-type': 'Scheduled Event' }));
  }
  // One stream of draws for every upload rule: a stage with one rule draws what it drew before routes.
  const rng = world.rng('eventbridge');
  const onUpload = rulesForSource(stage.rules, 'aws.s3').map((rule) => ({
    rule,
    bus: new EventBridgeRule(
      world.clock,
      rng,
      world.recorder,
      // EventBridge delivers to both targets at once; an asynchronous Lambda invocation is queued before a runtime
      // starts, so the queue's copy lands first (in the twin, it is delivered first).
      [...rule.targets]
        .sort((a, b) => Number(a.kind === 'function') - Number(b.kind === 'function'))
        .map((target) => async (event: Record<string, unknown>) => deliver(target, event)),
      { duplicateRate: world.scenario.rates.duplicate, ...rule.retry },
    ),
  }));
  return (event, key) => {
    for (const { rule, bus } of onUpload) if (ruleTakesKey(rule, key)) bus.put(event);
  };
}

/** What `terraform apply` creates that the world's engines hold: the queues, the task definitions and the tables. */
async function provision(run: Run): Promise<void> {
  createQueues(run);
  run.world.ecs.registerTaskDefinitions(run.stage.taskDefinitions);
  for (const table of run.stage.tables) await run.world.ddb.createTable(table);
}

export function sluiceDesign(_stage: string): Design {
  const idOf = (o: { bucket: string; key: string; sequencer: string }) => jobIdOf(o.bucket, o.key, '', o.sequencer);
  return {
    name: 'sluice',
    jobIdOf: idOf,
    async setup(world: World) {
      const stage = readStage(synthesizeStageJson(world.stage));
      const run: Run = {
        world,
        stage,
        clock: { now: () => world.clock.now(), sleep: (ms: number) => world.clock.sleep(ms) },
        idOf,
        deliver: (target, event) => {
          if (target.kind === 'queue') world.sqs.sendMessage(queueUrl(target.queueName), JSON.stringify(event));
          else world.lambda.invokeAsync(target.functionName, target.input ?? event);
        },
      };
      await provision(run);
      const dispatcherSettings = dispatcherSettingsFromEnv(stage.dispatcher.env);
      if (dispatcherSettings.bucketName !== world.bucketName)
        throw new Error(`sluice twin: the dispatcher reads bucket ${dispatcherSettings.bucketName}, the world uploads to ${world.bucketName}`);
      await configurePool(world.ddb.observer, {
        settings: configurePoolSettingsFromEnv(stage.configurePool.env),
        input: stage.configurePool.seed,
        now: world.clock.now(),
      });

      // The functions' clients as the Lambda runtime gives them: the SDK's retries over each service (StartExecution
      // may answer 503, DynamoDB may throttle), and an invocation that may die between two calls.
      const clients: Clients = {
        sqs: world.faults.sdk(world.sqs),
        sfn: world.faults.sdk(world.faults.startExecution(world.sfn)),
        ddb: world.faults.sdk(world.ddb.documentClient, SDK_RETRY.dynamodb),
        lambda: world.faults.sdk(world.lambda),
      };
      const executionOf = (batch: string) => {
        const execution = world.sfn.describeExecution(executionArnOf(stage.stateMachine.arn, batch));
        return !execution ? 'none' : execution.status === 'RUNNING' ? 'running' : 'ended';
      };
      const leaks = new LeakWatch(world.recorder, executionOf);
      world.ddb.watch(dispatcherSettings.tableName, (key, item) => {
        const pk = key.pk?.S as string | undefined;
        if (pk?.startsWith(LEDGER_KEY_PREFIX)) leaks.leaseChanged(pk.slice(LEDGER_KEY_PREFIX.length), item?.lease?.M?.execution?.S as string | undefined);
      });

      registerDispatchAndJanitor(run, clients, leaks, dispatcherSettings);
      registerPacking(run, clients, dispatcherSettings.batchesTableName);
      let emitBudget: () => Promise<void> = async () => undefined;
      const machine = createStateMachine(run, dispatcherSettings.batchesTableName, () => void emitBudget());
      const capacity = registerCapacity(run, clients, dispatcherSettings.tableName);
      emitBudget = capacity.emitBudget;
      // The run meets a stage deployed a while ago: its capacity reader (every minute) has measured the account already,
      // before the scenario's faults began (and before its clock runs: a retry's sleep now would never end).
      await capacity.measureAccount(world.ddb.observer);
      onExecutionEnd(run, leaks, machine);
      const upload = schedulesAndUploads(run);
      const intakeUrls = [dispatcherSettings.queueUrl, ...(dispatcherSettings.routes ?? []).map((route) => route.queueUrl)].map((url) =>
        queueUrl(new URL(url).pathname.split('/').pop()!),
      );
      return {
        upload: (object) => upload(s3Event(object, new Date(world.clock.now()).toISOString()), object.key),
        // Queued wake-ups (throttled and retried with backoff up to 5 min) would only find an empty queue.
        isQuiet: () => intakeUrls.every((url) => world.sqs.counts(url).total === 0) && world.lambda.running() === 0,
      };
    },
  };
}
