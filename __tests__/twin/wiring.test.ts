import { functionNameOf, intakeQueueName, routeQueueName } from '../../environments/names';
import { readStage } from '../../twin/synthesized-stage';
import { ruleForSource, rulesForSource } from '../../twin/wiring';
import { STAGES, synthStage } from '../support/synth';

/** The twin runs the stage's EventBridge wiring as synthesized: its schedules, its rules' targets and what each gets. */
describe.each(STAGES)('the twin reads the %s stage’s wiring', (stage) => {
  const { json, config } = synthStage(stage);
  const { rules } = readStage(json);
  const fn = (role: Parameters<typeof functionNameOf>[1]) => functionNameOf(config.namePrefix, role);

  test('schedules: the dispatcher and the capacity reader every minute, the janitor every five', () => {
    const schedules = rules
      .filter((r) => r.everySeconds !== undefined)
      .map((r) => [r.targets.map((t) => (t.kind === 'function' ? t.functionName : t.queueName)), r.everySeconds]);
    expect(schedules.sort()).toEqual(
      [
        [[fn('capacity')], 60],
        [[fn('dispatcher')], 60],
        [[fn('janitor')], 300],
      ].sort(),
    );
  });

  test('an upload goes to its route’s intake queue (the event) and wakes the dispatcher (a constant), with the rule’s retry policy', () => {
    // A stage with routes has a rule per route, each to its route's queue (the default route's: the stage's own).
    const queues = config.routes?.map((route) => routeQueueName(config, route.name)) ?? [intakeQueueName(config.namePrefix)];
    const onUpload = rulesForSource(rules, 'aws.s3');
    expect(onUpload.flatMap((rule) => rule.targets.filter((t) => t.kind === 'queue').map((t) => t.queueName)).sort()).toEqual([...queues].sort());
    for (const rule of onUpload) {
      expect(rule.targets).toHaveLength(2);
      expect(rule.targets).toContainEqual({ kind: 'function', functionName: fn('dispatcher'), input: { reason: 'object-created' } });
      expect(rule.retry).toEqual({ maximumRetryAttempts: config.intake.ruleRetryAttempts, maximumEventAgeSeconds: config.intake.ruleMaxEventAgeSeconds });
    }
  });

  test('an execution that ended badly sends its event to the janitor, not a constant: the janitor must know which one', () => {
    const onStatus = ruleForSource(rules, 'aws.states');
    expect(onStatus.pattern?.detail?.status).toEqual(['FAILED', 'TIMED_OUT', 'ABORTED']);
    expect(onStatus.targets).toEqual([{ kind: 'function', functionName: fn('janitor') }]);
  });
});
