/**
 * The explorer's invariants catch what they claim to: a schedule whose engines are tampered with behind the actors'
 * backs (a counter edited, a message deleted, a lease orphaned) breaks the matching invariant at that step.
 */
import { DeleteMessageCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { LibraryBinding } from '../../explorer/engines';
import { drainOption, runSchedule, type Chooser, type Context } from '../../explorer/search';
import { explorerStage } from '../../explorer/stage';
import type { ExplorerWorld, Option } from '../../explorer/world';

let ctx: Context;
beforeAll(() => {
  const es = explorerStage();
  const binding = new LibraryBinding();
  ctx = { es, binding, machine: binding.machine(es.stage.stateMachine.definition) };
});

/** The drain's choices, with `tamper` run once, before the step where `when` first holds. */
function tampering(when: (world: ExplorerWorld) => boolean, tamper: (world: ExplorerWorld) => Promise<unknown>): Chooser {
  let done = false;
  let last: number | undefined;
  return {
    choose(options: Option[], world: ExplorerWorld) {
      if (!done && when(world)) {
        done = true;
        void world.clock.track(() => tamper(world));
      }
      const option = drainOption(options, last);
      if (option?.kind === 'release') last = option.gate.actor.id;
      return option;
    },
  };
}

const script = [
  { kind: 'upload' as const, object: 1 },
  { kind: 'upload' as const, object: 2 },
];

test('a schedule nobody tampers with holds every invariant and settles', async () => {
  const result = await runSchedule(
    ctx,
    script,
    1,
    tampering(
      () => false,
      async () => undefined,
    ),
  );
  expect(result.violation).toBeUndefined();
  expect(result.settled).toBe(true);
});

test('an admitted counter edited by hand breaks the counters invariant', async () => {
  const result = await runSchedule(
    ctx,
    script,
    1,
    tampering(
      () => true,
      (world) =>
        world.ddb.call('UpdateItem', {
          TableName: ctx.es.dispatcher.tableName,
          Key: { pk: { S: 'POOL' } },
          UpdateExpression: 'ADD admittedVcpu :one',
          ExpressionAttributeValues: { ':one': { N: '1' } },
        }),
    ),
  );
  expect(result.violation?.kind).toBe('counters');
});

test('an upload whose message is deleted before anyone admitted it breaks the lost invariant', async () => {
  const result = await runSchedule(
    ctx,
    script,
    1,
    tampering(
      (world) => world.sqs.messages(world.intakeUrl).some((m) => m.state === 'visible'),
      async (world) => {
        const { Messages = [] } = await world.sqs.send(new ReceiveMessageCommand({ QueueUrl: world.intakeUrl, MaxNumberOfMessages: 1 }));
        await world.sqs.send(new DeleteMessageCommand({ QueueUrl: world.intakeUrl, ReceiptHandle: Messages[0].ReceiptHandle }));
      },
    ),
  );
  expect(result.violation).toMatchObject({ kind: 'lost', message: expect.stringContaining('has no message') });
});
